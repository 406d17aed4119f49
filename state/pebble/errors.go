package pebble

import "errors"

var (
	// ErrMemTableBudget reports that opening one more store would take the
	// memtables of an Env's open stores past its MemTableBudget.
	ErrMemTableBudget = errors.New("state/pebble: memtable budget exhausted")

	// ErrStoreOpen reports Open of a directory that a store of the same Env
	// already has open, or Destroy of one.
	ErrStoreOpen = errors.New("state/pebble: store already open in this directory")

	// ErrConfig reports Env options that conflict or are out of range.
	ErrConfig = errors.New("state/pebble: invalid configuration")
)
