"""``python -m jobqueue_sqs worker|init --app module:attr``: the SQS tools without the core CLI."""

from jobqueue_sqs.cli import sqs

if __name__ == "__main__":
    sqs(prog_name="python -m jobqueue_sqs")
