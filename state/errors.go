package state

import "errors"

var (
	// ErrClosed is the panic value when a closed store (or engine
	// environment) is used, and the error an iterator reports when its store
	// was closed under it. Using a closed store is a bug in the caller, as in
	// Pebble; an iterator interrupted by Close is not, so it gets an error.
	ErrClosed = errors.New("state: store closed")

	// ErrLocked reports a state directory already locked by another App
	// instance (or another LockDir call in this process). See LockDir.
	ErrLocked = errors.New("state: state directory locked by another instance")

	// ErrCorruptCheckpoint reports a checkpoint file that cannot be decoded:
	// bad magic, unknown version, checksum mismatch, truncation or invalid
	// entries. The runtime treats it as no checkpoint: it wipes the stores
	// and restores them from the start of their changelogs.
	ErrCorruptCheckpoint = errors.New("state: corrupt checkpoint")

	// ErrInvalidCheckpoint reports a checkpoint that WriteCheckpoint refuses
	// to write: an empty or over-long topic, or a negative partition or
	// offset.
	ErrInvalidCheckpoint = errors.New("state: invalid checkpoint entry")
)
