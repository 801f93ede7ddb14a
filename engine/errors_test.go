package engine_test

import (
	"errors"
	"testing"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

func TestErrorText(t *testing.T) {
	_, parseErr := codec.Parse([]byte(`{"a":`), codec.ParseOptions{})
	if parseErr == nil {
		t.Fatal("a truncated payload parsed")
	}
	pe := &engine.ParseError{Index: 3, Err: parseErr}
	for _, tc := range []struct {
		name string
		err  error
		text string
		is   []error
	}{
		{
			name: "stage_error_sink",
			err:  &engine.StageError{Stage: engine.StageSink, Receiver: "inmem", Records: 5, Tokens: 4, Err: errBoom},
			text: "engine: sink failed (receiver inmem) on a block of 5 record(s) and 4 token(s); " +
				"nothing of it was committed and the loop stopped: boom",
			is: []error{engine.ErrSink, errBoom},
		},
		{
			name: "stage_error_recv_has_no_block",
			err:  &engine.StageError{Stage: engine.StageRecv, Receiver: "kafka", Err: transport.ErrConnection},
			text: "engine: recv failed (receiver kafka): " + transport.ErrConnection.Error(),
			is:   []error{engine.ErrRecv, transport.ErrConnection},
		},
		{
			name: "stage_error_without_receiver_or_cause",
			err:  &engine.StageError{Stage: engine.StageCommit, Records: 1, Tokens: 1},
			text: "engine: commit failed on a block of 1 record(s) and 1 token(s); nothing of it was committed and the loop stopped",
			is:   []error{engine.ErrCommit},
		},
		{
			name: "dead_letter_error",
			err:  &engine.DeadLetterError{Count: 2, FirstReason: "parse error: truncated"},
			text: engine.ErrDeadLettersRejected.Error() + " (2 dead letter(s), first: parse error: truncated)",
			is:   []error{engine.ErrDeadLettersRejected},
		},
		{
			name: "parse_error",
			err:  pe,
			text: "engine: record 3 of the block failed to parse (parse_error_action fail_batch): " + parseErr.Error(),
			is:   []error{engine.ErrParseBatch, codec.ErrSyntax, codec.ErrTruncated},
		},
		{
			name: "parse_error_inside_a_stage_error",
			err:  &engine.StageError{Stage: engine.StageParse, Receiver: "file", Records: 10, Tokens: 10, Err: pe},
			text: "engine: parse failed (receiver file) on a block of 10 record(s) and 10 token(s); " +
				"nothing of it was committed and the loop stopped: " + pe.Error(),
			is: []error{engine.ErrParseBatch, codec.ErrSyntax},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.text {
				t.Fatalf("Error() =\n%q\nwant\n%q", got, tc.text)
			}
			for _, target := range tc.is {
				if !errors.Is(tc.err, target) {
					t.Errorf("%v does not match %v", tc.err, target)
				}
			}
			if errors.Is(tc.err, engine.ErrProcess) {
				t.Errorf("%v matches ErrProcess, the sentinel of another stage", tc.err)
			}
		})
	}
	var se *engine.StageError
	var gotPE *engine.ParseError
	wrapped := error(&engine.StageError{Stage: engine.StageParse, Err: pe})
	if !errors.As(wrapped, &se) || se.Stage != engine.StageParse || !errors.As(wrapped, &gotPE) || gotPE.Index != 3 {
		t.Fatalf("errors.As through a StageError: stage %v, parse error %v", se, gotPE)
	}
	var dle *engine.DeadLetterError
	routeErr := error(&engine.StageError{Stage: engine.StageRoute, Err: &engine.DeadLetterError{Count: 1, FirstReason: "x"}})
	if !errors.As(routeErr, &dle) || dle.Count != 1 || !errors.Is(routeErr, engine.ErrRoute) || !errors.Is(routeErr, engine.ErrDeadLettersRejected) {
		t.Fatalf("a rejected dead letter inside a route StageError: %v", routeErr)
	}
}
