"""The worker Lambda: SQS batches in, jobs of the app named by JOBQUEUE_APP run (see jobqueue_sqs.handler)."""

from jobqueue_sqs.handler import lambda_handler

__all__ = ["lambda_handler"]
