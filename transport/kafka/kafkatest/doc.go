// Package kafkatest starts an in-process Kafka cluster for tests: kfake,
// which speaks the real wire protocol over TCP, so code under test goes
// through the real franz-go client. It also produces and reads records
// with a plain client, restarts a persistent cluster on the same ports,
// and makes throw-away TLS certificates.
//
//	c := kafkatest.Start(t, kfake.SeedTopics(4, "orders"))
//	cfg := kafka.Config{Brokers: c.Addrs(), Group: "g", Topics: []string{"orders"}}
//	c.Produce(t, "orders", kafkatest.Values("a", "b")...)
package kafkatest
