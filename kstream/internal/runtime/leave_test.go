package runtime

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A member whose client closed without leaving (no broker answered its
// LeaveGroup) holds up the group's next join for its whole session; the
// leaver removes it on behalf of the closed client. The broker refuses the
// closing client's own LeaveGroup, and the sessions are minutes long, so
// the second client's join completes within the test only when the leaver
// removed the first member.
func TestLeaverRemovesAReplacedMember(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The broker refuses every LeaveGroup but the leaver's, as if it had
	// been down when the first client closed.
	cluster.ControlKey(int16(kmsg.LeaveGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		lr := req.(*kmsg.LeaveGroupRequest)
		for _, m := range lr.Members {
			if m.Reason != nil && strings.HasPrefix(*m.Reason, "streamwork:") {
				return nil, nil, false
			}
		}
		resp := lr.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.Version = lr.Version
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil, true
	})

	member := func(assigned chan struct{}) []kgo.Opt {
		return []kgo.Opt{
			kgo.SeedBrokers(cluster.ListenAddrs()...),
			kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
			kgo.SessionTimeout(4 * time.Minute), kgo.RebalanceTimeout(4 * time.Minute),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
				select {
				case <-assigned:
				default:
					close(assigned)
				}
			}),
		}
	}
	join := func(name string, cl *kgo.Client, assigned chan struct{}) {
		t.Helper()
		for {
			select {
			case <-assigned:
				return
			case <-ctx.Done():
				t.Fatalf("client %s was never assigned: %v", name, ctx.Err())
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			cl.PollFetches(pctx)
			pcancel()
		}
	}

	assignedA := make(chan struct{})
	a, err := kgo.NewClient(member(assignedA)...)
	if err != nil {
		t.Fatal(err)
	}
	join("a", a, assignedA)
	memberA, _ := a.GroupMetadata()
	if memberA == "" {
		t.Fatal("client a joined with no member id")
	}
	a.Close() // its LeaveGroup is refused: the member stays

	assignedB := make(chan struct{})
	b, err := kgo.NewClient(member(assignedB)...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var l leaver
	l.leave(ctx, b, "g", memberA, slog.New(slog.NewTextHandler(io.Discard, nil)))
	join("b", b, assignedB)
	l.stop()

	memberB, _ := b.GroupMetadata()
	groups, err := kadm.NewClient(b).DescribeGroups(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range groups["g"].Members {
		got = append(got, m.MemberID)
	}
	if len(got) != 1 || got[0] != memberB {
		t.Fatalf("members of g: %v, want only b's %s (a's was %s)", got, memberB, memberA)
	}
}

// An empty member id (a client that never joined) is nothing to remove:
// leave starts nothing.
func TestLeaverIgnoresAnEmptyMember(t *testing.T) {
	var l leaver
	l.leave(context.Background(), nil, "g", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(l.cancel) != 0 {
		t.Fatalf("leave started %d goroutines for an empty member", len(l.cancel))
	}
	l.stop()
}
