// Package wire holds every byte format the runtime persists or sends
// between instances: the assignor's member user data, task checkpoints,
// table change values, and the window and join formats. Each format starts
// with a version byte and has a fuzz test: a decoder never panics, whatever
// the input, and returns a clear error instead.
package wire
