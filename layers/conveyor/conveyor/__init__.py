"""Conveyor: the shared domain package deployed as a Lambda layer. Handlers stay thin and call into here."""
