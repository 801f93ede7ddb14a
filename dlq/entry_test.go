package dlq_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/transport"
)

func TestEntryJSONFormat(t *testing.T) {
	e := dlq.Entry{
		Time:        time.UnixMilli(1711432800123),
		Service:     "loader",
		Reason:      "schema mismatch",
		Attempts:    2,
		Payload:     []byte(`{"id":7}`),
		Destination: "acme.auth",
		Source:      dlq.KafkaSource("events", 3, 12345),
	}
	want := `{"timestamp":1711432800123,"service":"loader","reason":"schema mismatch","attempts":2,` +
		`"payload":"eyJpZCI6N30=","destination":"acme.auth","source":{"topic":"events","partition":3,"offset":12345}}`
	if got := string(e.AppendJSON(nil)); got != want {
		t.Fatalf("JSON\n got %s\nwant %s", got, want)
	}
	// Optional parts are left out; partition 0 and offset 0 are kept.
	min := dlq.Entry{Time: time.UnixMilli(5), Reason: "r", Source: dlq.KafkaSource("", 0, 0)}
	if got := string(min.AppendJSON(nil)); got != `{"timestamp":5,"service":"","reason":"r","attempts":0,"payload":"","source":{"partition":0,"offset":0}}` {
		t.Fatalf("minimal JSON %s", got)
	}
	none := dlq.Entry{Time: time.UnixMilli(5), Reason: "r", Source: &dlq.Source{}}
	if got := string(none.AppendJSON(nil)); strings.Contains(got, "source") || strings.Contains(got, "destination") {
		t.Fatalf("empty source/destination must be left out: %s", got)
	}
	// The output is valid JSON that encoding/json reads back the same.
	var generic map[string]any
	if err := json.Unmarshal(e.AppendJSON(nil), &generic); err != nil {
		t.Fatal(err)
	}
	if generic["payload"] != "eyJpZCI6N30=" {
		t.Fatalf("payload %v", generic["payload"])
	}
}

func TestEntryRoundTripWithAwkwardText(t *testing.T) {
	e := dlq.Entry{
		Time:     time.UnixMilli(-42).UTC(),
		Service:  "svc\"\\\n\t\x00\x1f",
		Reason:   "line\u2028sep\u2029 <html> & ünïcödé 🚀",
		Attempts: 7,
		Payload:  []byte{0, 1, 2, 0xff, '\n'},
		Source:   &dlq.Source{Token: "file:8812"},
		Key:      []byte{0, '"', 0xfe},
		Headers:  []transport.Header{{Key: "trace\"id", Value: []byte{1, 2}}, {Key: "empty", Value: []byte{}}},
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got dlq.Entry
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal %s: %v", b, err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, e)
	}
	// Invalid UTF-8 becomes U+FFFD per byte, as encoding/json does.
	bad := dlq.Entry{Reason: "a\xffb\xc3", Time: time.UnixMilli(0)}
	ours := bad.AppendJSON(nil)
	var viaStd struct{ Reason string }
	_ = json.Unmarshal(ours, &viaStd)
	std, _ := json.Marshal("a\xffb\xc3")
	var stdBack string
	_ = json.Unmarshal(std, &stdBack)
	if viaStd.Reason != stdBack {
		t.Fatalf("invalid UTF-8: ours %q, encoding/json %q", viaStd.Reason, stdBack)
	}
}

func TestDecodeAcceptsRFC3339AndUnknownFields(t *testing.T) {
	e, err := dlq.Decode([]byte(`{"timestamp":"2026-03-02T14:05:06.789123Z","reason":"r","payload":"","extra":[1,2],"source":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Time.Equal(time.Date(2026, 3, 2, 14, 5, 6, 789000000, time.UTC)) {
		t.Fatalf("time %v (kept to the millisecond)", e.Time)
	}
	if e.Source != nil {
		t.Fatalf("an empty source decodes to nil, got %+v", e.Source)
	}
}

func TestDecodeRejectsBadEntriesNamingTheField(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"not json":          {`nope`, "not a JSON entry object"},
		"array":             {`[1]`, "not a JSON entry object"},
		"trailing":          {`{"timestamp":1,"reason":"r","payload":""} {}`, "data after"},
		"no timestamp":      {`{"reason":"r","payload":""}`, "timestamp is missing"},
		"null timestamp":    {`{"timestamp":null,"reason":"r","payload":""}`, "timestamp is missing"},
		"float timestamp":   {`{"timestamp":1.5,"reason":"r","payload":""}`, "timestamp"},
		"bad time text":     {`{"timestamp":"yesterday","reason":"r","payload":""}`, "timestamp"},
		"no reason":         {`{"timestamp":1,"payload":""}`, "reason is missing"},
		"no payload":        {`{"timestamp":1,"reason":"r"}`, "payload is missing"},
		"bad base64":        {`{"timestamp":1,"reason":"r","payload":"!!"}`, "payload is not standard base64"},
		"unpadded base64":   {`{"timestamp":1,"reason":"r","payload":"YQ"}`, "payload is not standard base64"},
		"negative attempts": {`{"timestamp":1,"reason":"r","payload":"","attempts":-1}`, "attempts"},
		"huge attempts":     {`{"timestamp":1,"reason":"r","payload":"","attempts":99999999999}`, "attempts"},
		"negative offset":   {`{"timestamp":1,"reason":"r","payload":"","source":{"offset":-1}}`, "source.offset"},
		"negative part":     {`{"timestamp":1,"reason":"r","payload":"","source":{"partition":-1}}`, "source.partition"},
		"partition > int32": {`{"timestamp":1,"reason":"r","payload":"","source":{"partition":4294967296}}`, "not a JSON entry object"},
		"wrong type":        {`{"timestamp":1,"reason":5,"payload":""}`, "not a JSON entry object"},
		"bad key":           {`{"timestamp":1,"reason":"r","payload":"","key":"!!"}`, "key is not standard base64"},
		"bad header value":  {`{"timestamp":1,"reason":"r","payload":"","headers":[{"key":"a","value":"YQ=="},{"key":"b","value":"?"}]}`, "headers[1].value"},
		"headers not list":  {`{"timestamp":1,"reason":"r","payload":"","headers":{"a":"b"}}`, "not a JSON entry object"},
	} {
		_, err := dlq.Decode([]byte(tc.in))
		if !errors.Is(err, dlq.ErrMalformedEntry) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want ErrMalformedEntry mentioning %q)", name, err, tc.want)
		}
	}
}

func TestSourceFromToken(t *testing.T) {
	p := func(v int32) *int32 { return &v }
	o := func(v int64) *int64 { return &v }
	for in, want := range map[string]*dlq.Source{
		"":                     nil,
		"inmem:17":             {Token: "inmem:17"},
		"kafka:orders:3:1042":  {Topic: "orders", Partition: p(3), Offset: o(1042), Token: "kafka:orders:3:1042"},
		"kafka:a.b-c_d:0:0":    {Topic: "a.b-c_d", Partition: p(0), Offset: o(0), Token: "kafka:a.b-c_d:0:0"},
		"kafka:orders:x:1":     {Token: "kafka:orders:x:1"},
		"kafka:orders:3":       {Token: "kafka:orders:3"},
		"kafka::3:4":           {Token: "kafka::3:4"},
		"kafka:t:-1:4":         {Token: "kafka:t:-1:4"},
		"kafka:t:1:-4":         {Token: "kafka:t:1:-4"},
		"kafka:t:99999999999:": {Token: "kafka:t:99999999999:"},
	} {
		if got := dlq.SourceFromToken(in); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v, want %+v", in, got, want)
		}
	}
}

func TestReaderSkipsTornAndBadLines(t *testing.T) {
	good := func(r string) string {
		e := dlq.Entry{Time: time.UnixMilli(1), Reason: r}
		return string(e.AppendJSON(nil))
	}
	input := good("a") + "\n\n" + `{"timestamp":1,"rea` + "\n" + good("b") + "\n" + strings.Repeat("x", 100) + "\n" + good("c")
	rd := dlq.NewReader(strings.NewReader(input))
	rd.SetMaxLineBytes(90)
	var got []string
	var bad []int
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *dlq.LineError
		if errors.As(err, &le) {
			if !errors.Is(err, dlq.ErrMalformedEntry) {
				t.Fatalf("LineError does not match ErrMalformedEntry: %v", err)
			}
			bad = append(bad, le.Line)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Reason)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("entries %v", got)
	}
	if len(bad) != 2 || bad[0] != 3 || bad[1] != 5 {
		t.Fatalf("bad lines %v, want [3 5]", bad)
	}
	// A read error of the source is returned as is.
	rd = dlq.NewReader(io.MultiReader(bytes.NewReader([]byte(good("a")+"\n")), errReader{}))
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); !errors.Is(err, errRead) {
		t.Fatalf("read error: %v", err)
	}
}

var errRead = errors.New("disk on fire")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errRead }
