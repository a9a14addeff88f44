// Package lanes runs dialogue turns on three priority lanes (urgent, normal,
// batch) so that a complaint or an emergency never waits behind routine or
// bulk work.
//
// Each lane has its own workers and its own bounded queue (Config). A full
// queue rejects at once with ErrQueueFull rather than blocking the caller:
// the inbox keeps the message and retries, so back-pressure never stalls a
// channel adapter. Idle normal and batch workers look at the urgent queue
// before their own, so urgent work also gets their capacity; urgent workers
// only ever run urgent work, so normal and batch floods cannot take them.
//
// Classifier decides a turn's lane from its normalized text (keywords) and,
// once known, its intent; an intent may only raise the priority.
//
// It must not: know anything about dialogue state or platforms, run a task
// after its caller stopped waiting for it while it was still queued, keep
// package-level state, or log (callers see every outcome as an error and
// the metrics count them).
package lanes
