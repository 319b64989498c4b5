-- Single-use approval links: the first use of an approver's approve or reject link records
-- the decision here (and sends the message in the same transaction); later uses report it.
CREATE TABLE flowgate.approval_uses (
    nonce       text PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES flowgate.workflows (id) ON DELETE CASCADE,
    topic       text NOT NULL,
    approver    text NOT NULL,
    decision    text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     text,
    message_id  bigint,
    used_at     timestamptz NOT NULL DEFAULT now()
);
