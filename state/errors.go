package state

import "errors"

var (
	// ErrClosed is the panic value when a closed store (or engine
	// environment) is used, and the error an iterator reports when its store
	// was closed under it. Using a closed store is a bug in the caller, as in
	// Pebble; an iterator interrupted by Close is not, so it gets an error.
	ErrClosed = errors.New("state: store closed")

	// ErrCorrupt reports a store whose files are damaged: truncated,
	// missing, or failing their checksums, found when the store is opened
	// or read. The runtime logs it, deletes the store and restores it from
	// its changelog.
	ErrCorrupt = errors.New("state: store corrupt")

	// ErrIncompatible reports a store written in another on-disk format (an
	// older version of the engine's layout). The runtime deletes it and
	// restores it from its changelog.
	ErrIncompatible = errors.New("state: store format incompatible")

	// ErrWindowConfig reports a WindowStoreConfig, SessionStoreConfig or
	// VersionedStoreConfig that Validate refuses: a missing or negative
	// duration, one that is not a whole number of milliseconds, a
	// retention shorter than the window size (or inactivity gap) plus the
	// grace period, or a segment interval that would keep too many
	// segments live.
	ErrWindowConfig = errors.New("state: invalid window or session store configuration")

	// ErrCorruptWindowKey reports a key (or, for versioned stores, a
	// value) that a window, session or versioned store cannot decode: not
	// written by a store of that kind (or of another RetainDuplicates
	// mode), truncated, or filed under a segment that its timestamp does
	// not belong to, which is what a store written with another segment
	// interval looks like.
	ErrCorruptWindowKey = errors.New("state: corrupt window or session store key")

	// ErrInvalidSession reports a session whose start is after its end.
	ErrInvalidSession = errors.New("state: session starts after it ends")
)
