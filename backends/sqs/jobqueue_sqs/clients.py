"""boto3 clients for the backend: built from a session (injectable) or given outright."""

from __future__ import annotations

from typing import Any

from jobqueue_sqs.settings import SQSSettings

#: botocore's ``Config`` of every client made here (built with the first client: botocore loads with boto3)
CLIENT_CONFIG: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 5}, "connect_timeout": 5, "read_timeout": 30}


class Clients:
    """The SQS, DynamoDB and Lambda clients, made on first use.

    ``session`` is a ``boto3.Session`` (say, one holding an assumed role's credentials); explicit
    ``sqs``/``dynamodb``/``lambda_`` clients win over it.
    """

    def __init__(self, settings: SQSSettings, *, session: Any = None, sqs: Any = None, dynamodb: Any = None, lambda_: Any = None) -> None:
        self.settings = settings
        self._session = session
        self._made: dict[str, Any] = {"sqs": sqs, "dynamodb": dynamodb, "lambda": lambda_}
        self._given = {name for name, client in self._made.items() if client is not None}

    def _client(self, service: str) -> Any:
        client = self._made.get(service)
        if client is None:
            from botocore.config import Config

            if self._session is None:
                import boto3

                self._session = boto3.Session()
            kwargs: dict[str, Any] = {"config": Config(**CLIENT_CONFIG)}
            if self.settings.region:
                kwargs["region_name"] = self.settings.region
            if self.settings.endpoint_url:
                kwargs["endpoint_url"] = self.settings.endpoint_url
            client = self._made[service] = self._session.client(service, **kwargs)
        return client

    @property
    def sqs(self) -> Any:
        return self._client("sqs")

    @property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @property
    def lambda_(self) -> Any:
        return self._client("lambda")

    def close(self) -> None:
        """Close the clients this object made (injected ones belong to the caller)."""
        for name, client in list(self._made.items()):
            if client is not None and name not in self._given:
                client.close()
                self._made[name] = None
