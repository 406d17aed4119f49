// Package devbroker finds the Kafka cluster an example program talks to.
//
// Every example's main calls [Brokers] with its -brokers flag:
//
//	brokers := flag.String("brokers", "", "Kafka bootstrap addresses, comma-separated (default: $KAFKA_BROKERS, else an embedded broker)")
//	flag.Parse()
//	addrs, stop, err := devbroker.Brokers(ctx, *brokers, logger)
//	if err != nil { ... }
//	defer stop()
//
// The -brokers flag wins, then the KAFKA_BROKERS environment variable; with
// neither, an in-process kfake cluster (franz-go's fake Kafka, with
// transactions and consumer groups) is started so that an example runs with
// nothing else installed. Run `docker compose up -d` at the repository root
// and pass -brokers localhost:9092 to use a real Apache Kafka instead.
package devbroker
