-- Workflow runtime: executors with heartbeats, named queues with a global concurrency
-- limit, and the indexes the dequeue and recovery queries need. Append-only.

-- One row per running flowgate process that executes workflows. A process refreshes
-- `heartbeat_at` periodically; PENDING runs of an executor that stopped refreshing are
-- taken over by another.
CREATE TABLE flowgate.executors (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Named queues. `global_limit` caps the PENDING runs of the queue across all processes
-- (NULL = no global cap); dequeuers lock this row, so the cap holds under concurrency.
CREATE TABLE flowgate.queues (
    name         text PRIMARY KEY,
    global_limit integer CHECK (global_limit IS NULL OR global_limit > 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Dequeue: oldest ENQUEUED first; running count per queue.
CREATE INDEX workflows_queue_idx ON flowgate.workflows (queue, status, created_at, id)
    WHERE status IN ('ENQUEUED', 'PENDING');

-- Recovery: PENDING runs by owner.
CREATE INDEX workflows_executor_idx ON flowgate.workflows (executor_id)
    WHERE status = 'PENDING';

-- Children of a run.
CREATE INDEX workflows_parent_idx ON flowgate.workflows (parent_id)
    WHERE parent_id IS NOT NULL;
