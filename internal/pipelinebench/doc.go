// Package pipelinebench holds the end-to-end pipeline benchmark: NDJSON
// file -> parse, add a field, re-encode -> NDJSON file, through the file
// transport and the batch engine, against a hand-written bufio + sonic loop
// doing the same work on the same file in the same run. It has no code of
// its own; see pipeline_test.go and BENCHMARKS.md.
package pipelinebench
