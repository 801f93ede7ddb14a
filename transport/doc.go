// Package transport is keel's data-plane contract: the Record and Batch
// types that move through a pipeline, commit tokens, receive limits, the
// Receiver and Sender interfaces every backend implements, the error
// taxonomy, and framing helpers that slice a blob into records.
//
// The contract, in short:
//
//   - A Record is a payload with an optional key, headers, a timestamp and a
//     payload format. It carries no acknowledgement.
//   - A Batch holds records, the commit tokens of the input that produced
//     them, and inline dead letters. The token count is independent of the
//     record count: a step that fans one record out to two keeps the input
//     tokens (use MapRecords), and the engine commits exactly those tokens.
//   - Receiver.Recv returns one batch per call under Limits (a record cap
//     and a soft byte cap with a floor of one record); Receiver.Commit
//     acknowledges tokens. Cancelling the context of Recv never loses a
//     record already taken from the source.
//   - Sender.Send and Sender.SendBatch return nil when every record was
//     accepted; otherwise an error that Classify maps to backpressure
//     (retry), dead-lettered by an outbound filter, or fatal. A *BatchError
//     names the indices that failed.
//
// Backends live in sub-packages: transport/inmem, transport/file,
// transport/pipe and transport/kafka.
package transport
