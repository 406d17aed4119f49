package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// UserDataVersion is the version of the member user data this code writes.
const UserDataVersion = 2

// TaskRunning is the offset sum a member reports for a task it runs as
// active now (Kafka Streams' LATEST_OFFSET): caught up by definition.
const TaskRunning int64 = -2

// MemberInfo is what a member says about itself in the user data of its
// JoinGroup metadata.
//
// Encoding, version 2 (big endian):
//
//	uint8   version (2)
//	uint16  length of the instance id, then its bytes
//	uint32  worker index
//	-- since version 2:
//	uint16  length of the query address (host:port, may be empty), then its bytes
//	uint32  number of task offsets, then for each:
//	        int32 sub-topology, int32 partition, int64 offset sum
//
// A task offset is the sum over the task's changelog partitions of the
// offsets the member's local state holds (TaskRunning for a task it runs
// as active now): how caught up its state is. Tasks whose state the member
// does not hold are absent. Later versions only append fields, so a
// decoder reads the fields it knows and ignores what follows; a version 1
// member has no query address and no task offsets.
type MemberInfo struct {
	Version     uint8
	InstanceID  string
	Worker      int
	QueryAddr   string
	TaskOffsets []TaskOffset
}

// TaskOffset is the state a member holds for one task: Sub and Partition
// name the task, Offset is its offset sum (or TaskRunning).
type TaskOffset struct {
	Sub       int32
	Partition int32
	Offset    int64
}

// ErrUserData reports member user data that cannot be decoded.
var ErrUserData = errors.New("kstream: malformed assignor user data")

// EncodeMemberInfo encodes m at UserDataVersion (m.Version is ignored).
// Strings longer than 65535 bytes are cut.
func EncodeMemberInfo(m MemberInfo) []byte {
	id, addr := cut16(m.InstanceID), cut16(m.QueryAddr)
	b := make([]byte, 0, 1+2+len(id)+4+2+len(addr)+4+16*len(m.TaskOffsets))
	b = append(b, UserDataVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Worker))
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr)))
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.TaskOffsets)))
	for _, to := range m.TaskOffsets {
		b = binary.BigEndian.AppendUint32(b, uint32(to.Sub))
		b = binary.BigEndian.AppendUint32(b, uint32(to.Partition))
		b = binary.BigEndian.AppendUint64(b, uint64(to.Offset))
	}
	return b
}

// DecodeMemberInfo decodes member user data of version 1 or later.
func DecodeMemberInfo(b []byte) (MemberInfo, error) {
	var m MemberInfo
	r := reader{b: b}
	m.Version = r.u8()
	if r.err != nil {
		return m, fmt.Errorf("%w: empty", ErrUserData)
	}
	if m.Version < 1 {
		return m, fmt.Errorf("%w: version %d", ErrUserData, m.Version)
	}
	m.InstanceID = r.str16()
	m.Worker = int(r.u32())
	if r.err != nil {
		return MemberInfo{Version: m.Version}, fmt.Errorf("%w: short instance id or worker index", ErrUserData)
	}
	if m.Version < 2 {
		return m, nil
	}
	m.QueryAddr = r.str16()
	n := r.count(16)
	for range n {
		m.TaskOffsets = append(m.TaskOffsets, TaskOffset{Sub: int32(r.u32()), Partition: int32(r.u32()), Offset: int64(r.u64())})
	}
	if r.err != nil {
		return MemberInfo{Version: m.Version}, fmt.Errorf("%w: version %d: %v", ErrUserData, m.Version, r.err)
	}
	return m, nil
}

// AssignmentInfoVersion is the version of the assignment user data this
// code writes.
const AssignmentInfoVersion = 1

// AssignmentInfo is what the group leader tells each member besides its
// active partitions, in the user data of the member's assignment.
//
// Encoding, version 1 (big endian):
//
//	uint8   version (1)
//	uint32  number of standby tasks, then each: int32 sub-topology, int32 partition
//	int64   when the next probing rebalance is due (Unix milliseconds; 0: none)
//	uint32  number of hosts, then for each:
//	        uint16 length of the query address, then its bytes
//	        uint32 number of active tasks, then each: int32 sub-topology, int32 partition
//	        uint32 number of standby tasks, then each: int32 sub-topology, int32 partition
//
// Standby is this member's standby tasks. Hosts maps the query address of
// every member that advertised one to the tasks it runs (as active and as
// standby), for routing interactive queries. Later versions only append.
type AssignmentInfo struct {
	Version   uint8
	Standby   []Task
	NextProbe int64
	Hosts     []HostTasks
}

// Task names a task: sub-topology and partition.
type Task struct {
	Sub       int32
	Partition int32
}

// HostTasks are the tasks of the members at one query address.
type HostTasks struct {
	Addr    string
	Active  []Task
	Standby []Task
}

// ErrAssignmentInfo reports assignment user data that cannot be decoded.
var ErrAssignmentInfo = errors.New("kstream: malformed assignment user data")

// EncodeAssignmentInfo encodes a at AssignmentInfoVersion (a.Version is
// ignored).
func EncodeAssignmentInfo(a AssignmentInfo) []byte {
	b := []byte{AssignmentInfoVersion}
	b = appendTasks(b, a.Standby)
	b = binary.BigEndian.AppendUint64(b, uint64(a.NextProbe))
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Hosts)))
	for _, h := range a.Hosts {
		addr := cut16(h.Addr)
		b = binary.BigEndian.AppendUint16(b, uint16(len(addr)))
		b = append(b, addr...)
		b = appendTasks(b, h.Active)
		b = appendTasks(b, h.Standby)
	}
	return b
}

// DecodeAssignmentInfo decodes assignment user data; empty data (a member
// assigned by an older leader) decodes as an empty AssignmentInfo.
func DecodeAssignmentInfo(b []byte) (AssignmentInfo, error) {
	var a AssignmentInfo
	if len(b) == 0 {
		return a, nil
	}
	r := reader{b: b}
	a.Version = r.u8()
	if a.Version < 1 {
		return AssignmentInfo{}, fmt.Errorf("%w: version %d", ErrAssignmentInfo, a.Version)
	}
	a.Standby = r.tasks()
	a.NextProbe = int64(r.u64())
	n := r.count(2 + 4 + 4)
	for range n {
		var h HostTasks
		h.Addr = r.str16()
		h.Active = r.tasks()
		h.Standby = r.tasks()
		a.Hosts = append(a.Hosts, h)
	}
	if r.err != nil {
		return AssignmentInfo{}, fmt.Errorf("%w: version %d: %v", ErrAssignmentInfo, a.Version, r.err)
	}
	return a, nil
}

func appendTasks(b []byte, ts []Task) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(ts)))
	for _, t := range ts {
		b = binary.BigEndian.AppendUint32(b, uint32(t.Sub))
		b = binary.BigEndian.AppendUint32(b, uint32(t.Partition))
	}
	return b
}

// SortTasks sorts ts by sub-topology, then partition.
func SortTasks(ts []Task) {
	slices.SortFunc(ts, func(a, b Task) int {
		if a.Sub != b.Sub {
			return int(a.Sub) - int(b.Sub)
		}
		return int(a.Partition) - int(b.Partition)
	})
}

func cut16(s string) string {
	if len(s) > 0xffff {
		return s[:0xffff]
	}
	return s
}

// reader reads big-endian fields; the first short read sets err and every
// later read returns zero.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("short data")

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str16() string { return string(r.take(int(r.u16()))) }

// count reads an element count and checks that the data can hold that many
// elements of at least minSize bytes each, so a corrupt count cannot make
// the decoder allocate without bound.
func (r *reader) count(minSize int) int {
	n := int64(r.u32())
	if r.err == nil && n*int64(minSize) > int64(len(r.b)) {
		r.err = fmt.Errorf("count %d exceeds the data", n)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func (r *reader) tasks() []Task {
	n := r.count(8)
	var ts []Task
	for range n {
		ts = append(ts, Task{Sub: int32(r.u32()), Partition: int32(r.u32())})
	}
	return ts
}
