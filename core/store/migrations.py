"""SQLite schema migrations: (version, statements), applied in order, recorded in schema_version.

Never edit a released migration; add a new one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE contacts (
                id TEXT PRIMARY KEY,
                bot TEXT NOT NULL,
                display_name TEXT,
                phone TEXT,
                last_agent TEXT,
                last_channel TEXT,
                consent INTEGER NOT NULL DEFAULT 1,
                deleted INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX contacts_phone ON contacts (bot, phone)",
            """CREATE TABLE identities (
                bot TEXT NOT NULL,
                channel TEXT NOT NULL,
                channel_user_id TEXT NOT NULL,
                chat_id TEXT NOT NULL,
                contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
                PRIMARY KEY (bot, channel, channel_user_id)
            )""",
            "CREATE INDEX identities_contact ON identities (contact_id)",
            """CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                bot TEXT NOT NULL,
                contact_id TEXT NOT NULL,
                status TEXT NOT NULL,
                assigned_agent TEXT,
                desk_thread TEXT,
                language TEXT,
                slots TEXT NOT NULL DEFAULT '{}',
                active_form TEXT,
                handoff_reason TEXT,
                version INTEGER NOT NULL DEFAULT 0,
                last_seq INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (bot, contact_id)
            )""",
            "CREATE INDEX conversations_thread ON conversations (bot, desk_thread)",
            "CREATE INDEX conversations_status ON conversations (bot, status, updated_at)",
            """CREATE TABLE inbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_id TEXT NOT NULL,
                bot TEXT NOT NULL,
                channel TEXT NOT NULL,
                platform_message_id TEXT NOT NULL,
                payload TEXT NOT NULL,
                received_at REAL NOT NULL,
                processed INTEGER NOT NULL DEFAULT 0,
                UNIQUE (bot, channel, platform_message_id)
            )""",
            "CREATE INDEX inbox_pending ON inbox (processed, conversation_id, id)",
            """CREATE TABLE events (
                conversation_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                type TEXT NOT NULL,
                channel TEXT,
                ts REAL NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (conversation_id, seq)
            ) WITHOUT ROWID""",
            "CREATE INDEX events_ts ON events (ts)",
            """CREATE TABLE outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                conversation_id TEXT NOT NULL,
                bot TEXT NOT NULL,
                channel TEXT NOT NULL,
                payload TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                not_before REAL,
                last_error TEXT,
                platform_message_id TEXT,
                lease_owner TEXT,
                lease_until REAL,
                created_at REAL NOT NULL,
                sent_at REAL
            )""",
            "CREATE INDEX outbox_pending ON outbox (state, conversation_id, seq)",
            "CREATE INDEX outbox_platform ON outbox (platform_message_id)",
            """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                expires_at REAL NOT NULL
            )""",
            """CREATE TABLE seen (
                key TEXT PRIMARY KEY,
                expires_at REAL NOT NULL
            )""",
            """CREATE TABLE kv (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                expires_at REAL
            )""",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                bot TEXT,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                detail TEXT NOT NULL,
                at REAL NOT NULL
            )""",
        ],
    ),
    (
        2,
        [
            # Failed turns back off and end as dead letters (processed=1, dead_at set).
            "ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE inbox ADD COLUMN not_before REAL",
            "ALTER TABLE inbox ADD COLUMN last_error TEXT",
            "ALTER TABLE inbox ADD COLUMN replays INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE inbox ADD COLUMN dead_at REAL",
            "CREATE INDEX inbox_dead ON inbox (dead_at) WHERE dead_at IS NOT NULL",
        ],
    ),
    (
        3,
        [
            # Fenced outbox leases: each claim stamps a fresh token; results are recorded only with it.
            "ALTER TABLE outbox ADD COLUMN lease_token TEXT",
        ],
    ),
    (
        4,
        [
            # Delivery receipts that arrived before their message's platform id was stored.
            """CREATE TABLE parked_receipts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                channel TEXT NOT NULL,
                platform_message_id TEXT NOT NULL,
                receipt TEXT NOT NULL,
                parked_at REAL NOT NULL
            )""",
        ],
    ),
    (
        5,
        [
            # Service cases (core.store.ports.analytics): figures only, no personal data; kept by
            # retention purges and forget.
            """CREATE TABLE cases (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_id TEXT NOT NULL,
                n INTEGER NOT NULL,
                bot TEXT NOT NULL,
                day TEXT NOT NULL,
                started_at REAL NOT NULL,
                last_customer_at REAL NOT NULL,
                expires_at REAL,
                channel TEXT,
                language TEXT,
                intent TEXT,
                handoff_at REAL,
                handoff_reason TEXT,
                handoff_intent TEXT,
                claimed_at REAL,
                agent TEXT,
                first_reply_at REAL,
                ended_at REAL,
                closed_at REAL,
                csat INTEGER,
                fallbacks INTEGER NOT NULL DEFAULT 0,
                frustration_peaks INTEGER NOT NULL DEFAULT 0,
                dead_letters INTEGER NOT NULL DEFAULT 0,
                customer_messages INTEGER NOT NULL DEFAULT 0,
                bot_messages INTEGER NOT NULL DEFAULT 0,
                agent_messages INTEGER NOT NULL DEFAULT 0,
                UNIQUE (conversation_id, n)
            )""",
            "CREATE INDEX cases_started ON cases (bot, started_at)",
            "CREATE INDEX cases_started_all ON cases (started_at)",
            ("CREATE INDEX cases_with_agents ON cases (bot, handoff_at)"
            " WHERE handoff_at IS NOT NULL AND ended_at IS NULL AND closed_at IS NULL"),
            "CREATE INDEX cases_open ON cases (expires_at) WHERE closed_at IS NULL",
            # Covers the waiting and handle times of a report (handed-over cases only).
            ("CREATE INDEX cases_handed ON cases (bot, started_at, handoff_at, claimed_at, first_reply_at, ended_at,"
            " day, channel) WHERE handoff_at IS NOT NULL"),
            # Daily aggregates: each counter of a case is added once, to its (bot, day, channel).
            """CREATE TABLE case_days (
                bot TEXT NOT NULL,
                day TEXT NOT NULL,
                channel TEXT NOT NULL,
                name TEXT NOT NULL,
                value INTEGER NOT NULL,
                PRIMARY KEY (bot, day, channel, name)
            ) WITHOUT ROWID""",
            """CREATE TABLE agent_activity (
                bot TEXT NOT NULL,
                agent TEXT NOT NULL,
                last_at REAL NOT NULL,
                PRIMARY KEY (bot, agent)
            ) WITHOUT ROWID""",
        ],
    ),
    (
        6,
        [
            # Claims that ended without a recorded result: sends that may have reached the platform.
            "ALTER TABLE outbox ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0",
        ],
    ),
    (
        7,
        [
            # The review queue (core/store/ports/review.py): masked customer messages and their labels.
            """CREATE TABLE review_items (
                id TEXT PRIMARY KEY,
                bot TEXT NOT NULL,
                conversation_id TEXT NOT NULL,
                contact_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                text TEXT NOT NULL,
                reasons TEXT NOT NULL,
                language TEXT,
                predicted_intent TEXT,
                confidence REAL,
                status TEXT NOT NULL,
                label TEXT,
                holdout INTEGER NOT NULL DEFAULT 0,
                labelled_by TEXT,
                labelled_at REAL,
                detail TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX review_bot ON review_items (bot, status, created_at)",
            "CREATE INDEX review_contact ON review_items (contact_id)",
        ],
    ),
]
