// Package service is the scaffolding that the example services and the
// crash-test programs of the integration suite share, so that each main is
// only its topology: the common flags (-brokers, -log-level, -guarantee),
// the choice of broker, the logger, and a context that ends on SIGINT or
// SIGTERM.
//
// An example's main:
//
//	var f service.Flags
//	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
//	flag.Parse()
//	ctx, cancel := service.SignalContext()
//	defer cancel()
//	logger := f.Logger(os.Stderr)
//	addrs, stop, err := service.Brokers(ctx, f.Brokers, logger)
//	if err != nil { ... }
//	defer stop()
//
// Brokers takes the -brokers flag first, then the KAFKA_BROKERS environment
// variable; with neither, it starts an in-process kfake cluster (franz-go's
// fake Kafka, with transactions and consumer groups) so that an example runs
// with nothing else installed. Run `docker compose up -d` at the repository
// root and pass -brokers localhost:9092 to use a real Apache Kafka instead.
package service
