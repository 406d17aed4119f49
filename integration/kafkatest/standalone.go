package kafkatest

import "fmt"

// Start finds or starts a broker for a program that is not a test (the
// benchmark harness), with the same providers as [Require], and returns it
// with stop, which stops what Start started and removes its data. Call
// Start at most once per process, and stop before the process exits.
func Start() (b *Broker, stop func(), err error) {
	b, err = start()
	if err != nil {
		shutdown()
		return nil, nil, fmt.Errorf("kafkatest: no real Kafka broker:\n%w", err)
	}
	return b, shutdown, nil
}
