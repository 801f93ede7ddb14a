package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

// printFields prints chosen fields of each JSON line (timestamps and
// source lines vary from run to run).
func printFields(buf *bytes.Buffer, keys ...string) {
	dec := json.NewDecoder(buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			fmt.Println("bad line:", err)
			return
		}
		var parts []string
		for _, k := range keys {
			if v, ok := m[k]; ok {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		fmt.Println(strings.Join(parts, " "))
	}
}

func ExampleSetup() {
	prev := slog.Default()
	defer slog.SetDefault(prev)

	var buf bytes.Buffer // a service leaves Output nil: stderr
	logging.Setup(logging.Options{
		Format:  logging.FormatJSON, // or LOG_FORMAT; auto picks text on a terminal
		Service: "orders",
		Version: "1.4.2",
		Output:  &buf,
		Metrics: metrics.New(metrics.Config{}),
	})
	slog.Info("connected", "db_host", "db.local", "db_password", "hunter2")
	printFields(&buf, "level", "msg", "service", "version", "db_host", "db_password")
	// Output:
	// level=INFO msg=connected service=orders version=1.4.2 db_host=db.local db_password=[REDACTED]
}

func ExampleNew() {
	type DB struct {
		Host     string
		User     string
		Password secret.String
		Options  map[string]string
	}
	var buf bytes.Buffer
	logger := logging.New(logging.Options{Format: logging.FormatJSON, Output: &buf, Metrics: metrics.New(metrics.Config{})})
	db := DB{Host: "db.local", User: "app", Password: secret.New("hunter2"),
		Options: map[string]string{"sslmode": "require", "api_key": "k-123"}}
	logger.Info("config", "db", db, "err", errors.New("dial postgres://app:hunter2@db.local/orders: refused"))
	printFields(&buf, "db", "err")
	// Output:
	// db=map[Host:db.local Options:map[api_key:[REDACTED] sslmode:require] Password:[REDACTED] User:app] err=dial postgres://app:[REDACTED]@db.local/orders: refused
}

func ExampleMaskString() {
	fmt.Println(logging.MaskString("host=db.local password=hunter2 sslmode=require"))
	fmt.Println(logging.MaskString(`{"user": "bob", "token": "abc.def"}`))
	fmt.Println(logging.MaskString("Authorization: Bearer eyJhbGciOi"))
	fmt.Println(logging.MaskString("redis://:s3cret@cache:6379/0"))
	// Output:
	// host=db.local password=[REDACTED] sslmode=require
	// {"user": "bob", "token": "[REDACTED]"}
	// Authorization: [REDACTED]
	// redis://:[REDACTED]@cache:6379/0
}

func ExampleStateChange() {
	var up logging.StateChange[bool]
	for _, ok := range []bool{true, true, false, false, true} {
		if up.Changed(ok) {
			fmt.Println("connectivity changed, up =", ok)
		}
	}
	fmt.Println("checks:", up.Events(), "logged:", up.Changes())
	// Output:
	// connectivity changed, up = true
	// connectivity changed, up = false
	// connectivity changed, up = true
	// checks: 5 logged: 3
}

func ExampleEveryN() {
	dropped := logging.EveryN{N: 100}
	for i := 0; i < 250; i++ {
		if ok, skipped := dropped.Allow(); ok {
			fmt.Println("record dropped, suppressed:", skipped)
		}
	}
	fmt.Println("events:", dropped.Events(), "suppressed:", dropped.Suppressed())
	// Output:
	// record dropped, suppressed: 0
	// record dropped, suppressed: 99
	// record dropped, suppressed: 99
	// events: 250 suppressed: 247
}

func ExampleEvery() {
	slow := logging.Every(10 * time.Second)
	start := time.Now()
	for _, at := range []time.Duration{0, time.Second, 5 * time.Second, 12 * time.Second} {
		if ok, skipped := slow.AllowAt(start.Add(at)); ok {
			fmt.Printf("at %v: sink is slow (suppressed %d)\n", at, skipped)
		}
	}
	// Output:
	// at 0s: sink is slow (suppressed 0)
	// at 12s: sink is slow (suppressed 2)
}

func ExampleAudit() {
	var buf bytes.Buffer
	logger := logging.New(logging.Options{Format: logging.FormatJSON, Output: &buf, Metrics: metrics.New(metrics.Config{})})
	logging.Audit(context.Background(), logger, logging.AuditEvent{
		Event:    logging.AuthFailure,
		Actor:    "client-42",
		Resource: "/admin/config",
		Reason:   "token expired",
	})
	printFields(&buf, "level", "msg", "audit", "event", "outcome", "actor", "resource", "reason")
	// Output:
	// level=WARN msg=audit auth_failure audit=true event=auth_failure outcome=failure actor=client-42 resource=/admin/config reason=token expired
}

func ExampleOptions_flood() {
	var buf bytes.Buffer
	logger := logging.New(logging.Options{
		Format:  logging.FormatJSON,
		Output:  &buf,
		Flood:   logging.FloodControl{Rate: 1, Burst: 3}, // per distinct message
		Metrics: metrics.New(metrics.Config{}),
	})
	for i := 0; i < 10; i++ {
		logger.Warn("queue full", "i", i)
	}
	printFields(&buf, "msg", "i")
	fmt.Println("suppressed:", logger.Handler().(*logging.Handler).Suppressed())
	// Output:
	// msg=queue full i=0
	// msg=queue full i=1
	// msg=queue full i=2
	// suppressed: 7
}
