// The jobqueue dashboard: plain JavaScript, no build step, nothing fetched but this app's own API.
"use strict";

(function () {
  const BASE = document.querySelector('meta[name="jobqueue-base"]').content.replace(/\/$/, "");
  const REFRESH_MS = 2000;
  const STATES = ["waiting", "active", "delayed", "completed", "failed", "cancelled"];
  const TOKEN_KEY = "jobqueue-admin-token";

  const ui = {
    openClean: null,      // queue whose clean form is open
    detail: null,         // {id, queue} of the job shown in the detail panel
    live: true,
    timer: null,
    queues: [],
    browseCursor: null,
    busy: false,
  };

  // -- token ----------------------------------------------------------------------------------------
  (function takeTokenFromHash() {
    const match = location.hash.match(/token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  })();
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // -- helpers --------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return "now";
    if (seconds < 90) return Math.round(seconds) + "s";
    if (seconds < 5400) return Math.round(seconds / 60) + "m";
    if (seconds < 172800) return Math.round(seconds / 3600) + "h";
    return Math.round(seconds / 86400) + "d";
  }

  function since(ts) {
    const text = ago(Date.now() / 1000 - ts);
    return text === "now" ? "just now" : `${text} ago`;
  }

  function when(ts) {
    if (ts === null || ts === undefined) return "–";
    const date = new Date(ts * 1000);
    return date.toLocaleString();
  }

  function toast(message) {
    const box = $("toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 3000);
  }

  function banner(message) {
    const box = $("banner");
    box.textContent = message || "";
    box.hidden = !message;
  }

  class Unauthorized extends Error {}

  async function api(path, options) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    const init = Object.assign({ headers, cache: "no-store" }, options || {});
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(BASE + path, init);
    if (response.status === 401) {
      showLogin();
      throw new Unauthorized("admin token needed");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok && !(path === "/api/health" && response.status === 503)) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
      const error = new Error(detail || response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const enc = encodeURIComponent;

  // -- login ----------------------------------------------------------------------------------------
  function showLogin() {
    const dialog = $("login");
    if (!dialog.open) dialog.showModal();
  }

  $("login-form").addEventListener("submit", () => {
    sessionStorage.setItem(TOKEN_KEY, $("login-token").value.trim());
    $("login-token").value = "";
    refresh();
  });

  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  $("pause-refresh").addEventListener("click", () => {
    ui.live = !ui.live;
    $("pause-refresh").textContent = ui.live ? "Live" : "Paused";
    if (ui.live) refresh();
  });

  // -- actions --------------------------------------------------------------------------------------
  async function act(label, path, body) {
    try {
      const init = { method: "POST" };
      if (body !== undefined) init.body = JSON.stringify(body);
      const answer = await api(path, init);
      const count = answer.count !== undefined && answer.count !== null ? ` (${answer.count})` : "";
      const state = answer.state ? `: now ${answer.state}` : "";
      toast(`${label}${count}${state}`);
    } catch (error) {
      if (!(error instanceof Unauthorized)) toast(`${label} failed: ${error.message}`);
    }
    await refresh();
  }

  const retryJob = (job) => act(`Retried ${job.id}`, `/api/jobs/${enc(job.id)}/retry?queue=${enc(job.queue)}`);
  const cancelJob = (job) => act(`Cancelled ${job.id}`, `/api/jobs/${enc(job.id)}/cancel?queue=${enc(job.queue)}`);

  function openDetail(job) {
    ui.detail = { id: job.id, queue: job.queue };
    refreshDetail().then(() => $("detail").scrollIntoView({ behavior: "smooth", block: "start" }));
  }

  // -- rendering: queues ------------------------------------------------------------------------------
  function sparkline(throughput) {
    const width = 150, height = 28;
    const n = throughput.completed.length;
    const totals = throughput.completed.map((c, i) => c + throughput.failed[i]);
    const peak = Math.max(1, ...totals);
    const step = width / n;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("role", "img");
    const sum = totals.reduce((a, b) => a + b, 0);
    svg.setAttribute("aria-label", `${sum} finished in the last ${n} minutes`);
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = `${sum} finished in the last ${n} min (completed ${throughput.completed.join(" ")}; failed ${throughput.failed.join(" ")})`;
    svg.append(title);
    const base = document.createElementNS("http://www.w3.org/2000/svg", "line");
    base.setAttribute("class", "base");
    base.setAttribute("x1", 0); base.setAttribute("x2", width);
    base.setAttribute("y1", height - 0.5); base.setAttribute("y2", height - 0.5);
    svg.append(base);
    for (let i = 0; i < n; i++) {
      const completedHeight = (throughput.completed[i] / peak) * (height - 2);
      const failedHeight = (throughput.failed[i] / peak) * (height - 2);
      for (const [cls, h, y] of [["c", completedHeight, height - completedHeight], ["f", failedHeight, height - completedHeight - failedHeight]]) {
        if (h <= 0) continue;
        const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        rect.setAttribute("class", cls);
        rect.setAttribute("x", (i * step + 1).toFixed(1));
        rect.setAttribute("width", Math.max(1, step - 2).toFixed(1));
        rect.setAttribute("y", y.toFixed(1));
        rect.setAttribute("height", Math.max(1, h).toFixed(1));
        svg.append(rect);
      }
    }
    return svg;
  }

  function renderQueues(stats) {
    const rows = [];
    ui.queues = Object.keys(stats.queues);
    for (const q of Object.values(stats.queues)) {
      const cells = STATES.map((s) => {
        const n = q.counts[s] || 0;
        return el("td", { class: `${s}${n ? "" : " zero"}`, "data-state": s, text: String(n) });
      });
      rows.push(el("tr", { "data-queue": q.queue },
        el("td", { class: "left" }, el("strong", { text: q.queue }), q.paused ? el("span", { class: "tag paused", text: "paused" }) : null),
        cells,
        el("td", { title: "age of the oldest waiting job", text: ago(q.oldest_waiting_age) }),
        el("td", { class: "left" }, sparkline(q.throughput)),
        el("td", { class: "left" }, el("div", { class: "actions" },
          q.paused
            ? el("button", { type: "button", class: "ghost", "data-action": "resume", onclick: () => act(`Resumed ${q.queue}`, `/api/queues/${enc(q.queue)}/resume`) }, "Resume")
            : el("button", { type: "button", class: "ghost", "data-action": "pause", onclick: () => act(`Paused ${q.queue}`, `/api/queues/${enc(q.queue)}/pause`) }, "Pause"),
          el("button", {
            type: "button", class: "ghost", "data-action": "retry-failed", disabled: !(q.counts.failed > 0),
            onclick: () => act(`Retried failed jobs of ${q.queue}`, `/api/queues/${enc(q.queue)}/retry-failed`),
          }, "Retry failed"),
          el("button", {
            type: "button", class: "ghost", "data-action": "clean",
            onclick: () => { ui.openClean = ui.openClean === q.queue ? null : q.queue; renderQueues(stats); },
          }, "Clean…"),
        )),
      ));
      if (ui.openClean === q.queue) rows.push(cleanForm(q.queue));
    }
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 10, class: "muted left", text: "No queues declared." })));
    $("queue-rows").replaceChildren(...rows);
    fillQueueSelect();
  }

  function cleanForm(queue) {
    const state = el("select", { "aria-label": "state to clean" },
      ["completed", "failed", "cancelled"].map((s) => el("option", { text: s })));
    const olderThan = el("input", { value: "0", size: 6, "aria-label": "older than", title: "seconds, or 15m, 24h, 7d" });
    const form = el("form", { class: "row", onsubmit: (event) => {
      event.preventDefault();
      ui.openClean = null;
      act(`Cleaned ${state.value} jobs of ${queue}`, `/api/queues/${enc(queue)}/clean`, { state: state.value, older_than: olderThan.value || "0" });
    } },
      "Remove", state, "jobs older than", olderThan,
      el("button", { type: "submit", class: "danger" }, "Remove"),
      el("button", { type: "button", class: "ghost", onclick: () => { ui.openClean = null; refresh(); } }, "Close"));
    return el("tr", { class: "clean-form" }, el("td", { colspan: 10, class: "left" }, form));
  }

  function fillQueueSelect() {
    const select = $("browse-queue");
    const current = select.value;
    const names = ["", ...ui.queues];
    if (select.options.length === names.length && [...select.options].every((o, i) => o.value === names[i])) return;
    select.replaceChildren(...names.map((n) => el("option", { value: n, text: n || "every queue" })));
    select.value = names.includes(current) ? current : "";
  }

  // -- rendering: failed jobs ---------------------------------------------------------------------------
  function renderFailed(list) {
    $("failed-count").textContent = list.jobs.length ? `(${list.jobs.length}${list.next_cursor ? "+" : ""})` : "";
    if (!list.jobs.length) {
      $("failed-list").replaceChildren(el("p", { class: "muted", text: "No failed jobs." }));
      return;
    }
    $("failed-list").replaceChildren(...list.jobs.map((job) => el("article", { class: "failed-job", "data-job-id": job.id },
      el("header", {},
        el("strong", { text: job.name }),
        el("span", { class: "mono muted", text: job.id }),
        el("span", { class: "tag", text: job.queue }),
        el("span", { class: "muted", text: `attempt ${job.attempt}/${job.max_attempts} · ${since(job.finished_at || job.created_at)}` })),
      job.error ? el("div", { class: "error", text: `${job.error.type}: ${job.error.message}` }) : null,
      job.error && job.error.traceback ? el("pre", { class: "traceback", "data-testid": "traceback", text: job.error.traceback }) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "retry", onclick: () => retryJob(job) }, "Retry"),
        el("button", { type: "button", class: "ghost", "data-action": "details", onclick: () => openDetail(job) }, "Details")),
    )));
  }

  // -- rendering: job browser ---------------------------------------------------------------------------
  async function refreshBrowser(append) {
    const queue = $("browse-queue").value;
    const state = $("browse-state").value;
    let path = `/api/jobs?state=${enc(state)}&limit=50`;
    if (queue) path += `&queue=${enc(queue)}`;
    if (append && ui.browseCursor) path += `&cursor=${enc(ui.browseCursor)}`;
    const list = await api(path);
    const rows = list.jobs.map((job) => el("tr", { class: "clickable", "data-job-id": job.id, onclick: () => openDetail(job) },
      el("td", { class: "left mono", text: job.id }),
      el("td", { class: "left" }, job.name, el("span", { class: "tag", text: job.queue })),
      el("td", { text: `${job.attempt}/${job.max_attempts}` }),
      el("td", { text: `${Math.round(job.progress)}%` }),
      el("td", { class: "left", title: when(job.created_at), text: since(job.created_at) })));
    if (!rows.length && !append) rows.push(el("tr", {}, el("td", { colspan: 5, class: "muted left", text: `No ${state} jobs.` })));
    if (append) $("job-rows").append(...rows); else $("job-rows").replaceChildren(...rows);
    ui.browseCursor = list.next_cursor;
    $("more").hidden = !list.next_cursor;
  }

  $("browse-queue").addEventListener("change", () => refreshBrowser(false).catch(() => {}));
  $("browse-state").addEventListener("change", () => refreshBrowser(false).catch(() => {}));
  $("more").addEventListener("click", () => refreshBrowser(true).catch(() => {}));

  // -- rendering: one job ------------------------------------------------------------------------------------
  async function refreshDetail() {
    const panel = $("detail");
    if (!ui.detail) { panel.hidden = true; return; }
    if (ui.detail.gone) return;  // shown once as gone; not asked for again
    let job;
    try {
      job = await api(`/api/jobs/${enc(ui.detail.id)}?queue=${enc(ui.detail.queue)}`);
    } catch (error) {
      if (error instanceof Unauthorized) throw error;
      ui.detail.gone = error.status === 404;
      panel.replaceChildren(el("h2", { text: `Job ${ui.detail.id}` }), el("p", { class: "muted", text: error.message }),
        el("button", { type: "button", class: "ghost", onclick: () => { ui.detail = null; panel.hidden = true; } }, "Close"));
      panel.hidden = false;
      return;
    }
    const retryable = job.state === "failed" || job.state === "cancelled";
    const cancellable = !["completed", "failed", "cancelled"].includes(job.state);
    panel.replaceChildren(...[
      el("h2", {}, "Job ", el("span", { class: "mono", text: job.id }), el("span", { class: `state ${job.state}`, "data-testid": "job-state", text: job.state }),
        el("span", { class: "spacer" }),
        el("span", { class: "actions" },
          el("button", { type: "button", "data-action": "retry", disabled: !retryable, onclick: () => retryJob(job) }, "Retry"),
          el("button", { type: "button", class: "danger", "data-action": "cancel", disabled: !cancellable, onclick: () => cancelJob(job) }, "Cancel"),
          el("button", { type: "button", class: "ghost", onclick: () => { ui.detail = null; panel.hidden = true; } }, "Close"))),
      el("dl", {},
        el("dt", { text: "job" }), el("dd", { text: `${job.name} on queue ${job.queue}` }),
        el("dt", { text: "progress" }), el("dd", {}, el("span", { class: "progress", role: "progressbar", "aria-valuenow": job.progress, "aria-valuemin": 0, "aria-valuemax": 100 },
          el("span", { style: `width:${Math.max(0, Math.min(100, job.progress))}%` })), ` ${Math.round(job.progress)}%`),
        el("dt", { text: "attempts" }), el("dd", { text: `${job.attempt} of ${job.max_attempts}` }),
        el("dt", { text: "priority" }), el("dd", { text: String(job.priority) }),
        job.cancel_requested ? [el("dt", { text: "cancel" }), el("dd", { text: "requested" })] : null),
      el("h3", { text: "Payload" }),
      el("pre", { "data-testid": "payload", text: JSON.stringify(job.payload, null, 2) }),
      job.redacted_fields.length ? el("p", { class: "muted", text: `Secret fields shown redacted: ${job.redacted_fields.join(", ")}` }) : null,
      job.result !== null && job.result !== undefined ? [el("h3", { text: "Result" }), el("pre", { text: JSON.stringify(job.result, null, 2) })] : null,
      job.error ? [el("h3", { text: "Error" }), el("div", { class: "failed-job" },
        el("div", { class: "error", text: `${job.error.type}: ${job.error.message}` }),
        job.error.traceback ? el("pre", { class: "traceback", text: job.error.traceback }) : null)] : null,
      el("h3", { text: "Timeline" }),
      el("ul", { class: "timeline" }, job.timeline.map((entry) => el("li", {}, el("strong", { text: entry.event }), " ", el("span", { class: "muted", text: when(entry.at) })))),
    ].flat().filter((node) => node !== null && node !== undefined));
    panel.hidden = false;
  }

  // -- the loop ---------------------------------------------------------------------------------------
  async function refresh() {
    if (ui.busy) return;
    ui.busy = true;
    clearTimeout(ui.timer);
    try {
      const [stats, health, failed] = await Promise.all([api("/api/stats"), api("/api/health"), api("/api/jobs?state=failed&limit=20")]);
      $("backend").textContent = stats.backend;
      const pill = $("health");
      pill.textContent = health.status + (health.latency_ms !== null && health.latency_ms !== undefined ? ` · ${health.latency_ms.toFixed(1)} ms` : "");
      pill.className = `pill ${health.status}`;
      pill.title = health.detail || "";
      renderQueues(stats);
      renderFailed(failed);
      await refreshBrowser(false);
      await refreshDetail();
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      $("signout").hidden = !token();
      banner("");
    } catch (error) {
      if (!(error instanceof Unauthorized)) banner(`Could not reach the admin API: ${error.message}`);
    } finally {
      ui.busy = false;
      if (ui.live) ui.timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
