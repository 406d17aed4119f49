package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// UserDataVersion is the version of the member user data this code writes.
const UserDataVersion = 1

// MemberInfo is what a member says about itself in the user data of its
// JoinGroup metadata.
//
// Encoding, version 1 (big endian):
//
//	uint8   version (1)
//	uint16  length of the instance id, then its bytes
//	uint32  worker index
//
// Later versions only append fields (host:port for interactive queries,
// the changelog offsets of the state a member holds, standby tasks), so a
// decoder reads the fields it knows and ignores what follows.
type MemberInfo struct {
	Version    uint8
	InstanceID string
	Worker     int
}

// ErrUserData reports member user data that cannot be decoded.
var ErrUserData = errors.New("kstream: malformed assignor user data")

func EncodeMemberInfo(m MemberInfo) []byte {
	id := m.InstanceID
	if len(id) > 0xffff {
		id = id[:0xffff]
	}
	b := make([]byte, 0, 1+2+len(id)+4)
	b = append(b, UserDataVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Worker))
	return b
}

func DecodeMemberInfo(b []byte) (MemberInfo, error) {
	var m MemberInfo
	if len(b) < 1 {
		return m, fmt.Errorf("%w: empty", ErrUserData)
	}
	m.Version = b[0]
	if m.Version < 1 {
		return m, fmt.Errorf("%w: version %d", ErrUserData, m.Version)
	}
	b = b[1:]
	if len(b) < 2 {
		return m, fmt.Errorf("%w: short instance id length", ErrUserData)
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+4 {
		return m, fmt.Errorf("%w: short instance id or worker index", ErrUserData)
	}
	m.InstanceID = string(b[:n])
	m.Worker = int(binary.BigEndian.Uint32(b[n:]))
	return m, nil
}
