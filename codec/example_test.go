package codec_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/metrics"
)

func ExampleParse() {
	payload := []byte(`{"level":"error","status":503,"latency_ms":12.5,"service":"api"}`)
	v, err := codec.Parse(payload, codec.ParseOptions{})
	if err != nil {
		fmt.Println("dead-letter:", err)
		return
	}
	level, _ := v.Field("level").Str()
	status, _ := v.Field("status").Int()
	latency, _ := v.Field("latency_ms").Float()
	fmt.Println(v.Format(), level, status, latency, v.Field("user").Kind())

	// A nesting bomb is a per-record error, not a crash.
	_, err = codec.Parse([]byte(strings.Repeat("[", 5000)), codec.ParseOptions{})
	fmt.Println(errors.Is(err, codec.ErrTooDeep))
	// Output:
	// json error 503 12.5 missing
	// true
}

func ExampleValue_Set() {
	in := []byte(`{"msg":"disk full","level":"warn"}`)
	v, _ := codec.Parse(in, codec.ParseOptions{})

	out, _ := v.Bytes() // unmodified: the original bytes, as they came
	fmt.Println(string(out))

	_ = v.Set("team", "storage")
	out, _ = v.Bytes() // modified: re-encoded as JSON, keys sorted
	fmt.Println(string(out), v.Modified())
	// Output:
	// {"msg":"disk full","level":"warn"}
	// {"level":"warn","msg":"disk full","team":"storage"} true
}

func ExampleDetector() {
	det, _ := codec.NewDetector(codec.DetectorConfig{
		RelockAfter: 2,
		Metrics:     metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true}),
	})
	msgpackMap := []byte{0x81, 0xa1, 'a', 0x01} // {"a": 1}
	for _, p := range [][]byte{[]byte(`{"a":1}`), msgpackMap, msgpackMap, msgpackMap} {
		f, err := det.Check(p)
		if err != nil {
			fmt.Println("dead-letter:", err)
			continue
		}
		fmt.Println("parse as", f)
	}
	// Output:
	// parse as json
	// dead-letter: codec: payload format mismatch: expected json, got msgpack (1 in a row)
	// dead-letter: codec: payload format mismatch: expected json, got msgpack (2 in a row; now locked to msgpack)
	// parse as msgpack
}

func ExampleInterner() {
	in, _ := codec.NewInterner(codec.InternerConfig{Preload: []string{"_table"}})
	opts := codec.ParseOptions{Format: codec.MsgPack, Interner: in}
	for _, p := range [][]byte{
		{0x81, 0xa6, '_', 't', 'a', 'b', 'l', 'e', 0xa4, 'l', 'o', 'g', 's'},
		{0x81, 0xa6, '_', 't', 'a', 'b', 'l', 'e', 0xa6, 'm', 'e', 't', 'r', 'i', 'c'},
	} {
		v, _ := codec.Parse(p, opts)
		table, _ := v.Field("_table").Str()
		fmt.Println(table)
	}
	fmt.Println(in.Len(), "name interned")
	// Output:
	// logs
	// metric
	// 1 name interned
}

func ExampleParseFormat() {
	f, err := codec.ParseFormat("msgpack")
	fmt.Println(f, err)
	_, err = codec.ParseFormat("xml")
	fmt.Println(err)
	// Output:
	// msgpack <nil>
	// codec: unknown payload format "xml": use auto, json or msgpack
}
