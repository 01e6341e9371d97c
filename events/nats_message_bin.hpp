#pragma once
// Where kiln lets go of NATS.c messages. The library frees a received
// message on its garbage collector thread, and wakes that thread for the
// first message after it fell asleep: at a cluster's pace, about one wake-up
// (two context switches) for every message a process received. Messages
// given here reach the library in batches, and a batch costs one wake-up.
// At most a few dozen messages, and a MiB of their data, wait to be freed.
typedef struct __natsMsg natsMsg;

namespace kiln::bus {

// Takes ownership of `m` (null is fine).
void dispose(natsMsg* m);

} // namespace kiln::bus
