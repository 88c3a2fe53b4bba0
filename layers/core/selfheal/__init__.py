"""selfheal: the domain package shared by every Lambda function and by the CLI."""
