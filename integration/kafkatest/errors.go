package kafkatest

import "errors"

var (
	// errShuttingDown is returned by a start that lost the race with
	// shutdown (a signal, or Main ending).
	errShuttingDown = errors.New("kafkatest: the test process is shutting down")

	// errPortTaken marks a jvm launch that lost a freshly picked port to
	// another process before the broker bound it; the launch is retried.
	errPortTaken = errors.New("kafkatest: a picked port was taken before the broker bound it")
)
