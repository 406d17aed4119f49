package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// When the application stops before it committed its input, WaitCommitted
// returns an error with the application's, and leaves that error on
// appDone for the caller, which waits for Run's result there.
func TestWaitCommittedLeavesTheAppsErrorForTheCaller(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	runErr := errors.New("the app failed")
	done := make(chan error, 1)
	done <- runErr
	err = WaitCommitted(ctx, adm, "group", ends, done)
	if err == nil || !strings.Contains(err.Error(), "the app failed") {
		t.Fatalf("WaitCommitted = %v, want the app's error", err)
	}
	select {
	case got := <-done:
		if got != runErr {
			t.Fatalf("appDone has %v, want %v", got, runErr)
		}
	default:
		t.Fatal("WaitCommitted took the app's error off appDone")
	}
}
