"""Jobs: the engine every capability runs on (enqueue, state, dispatch to SQS, workers, delayed release)."""
