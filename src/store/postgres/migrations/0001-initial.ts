import type { Migration } from './index.js';

/**
 * The first schema. Every table is prefixed meshd_ so the store can share a database.
 * Times are timestamptz written from the replica's clock; private keys are sealed (kek1:…)
 * with the key-encryption key, which is never stored here.
 */
export const initial: Migration = {
  version: 1,
  name: 'initial',
  sql: `
CREATE TABLE meshd_store_key (
  id smallint PRIMARY KEY CHECK (id = 1),
  key_id text NOT NULL,
  -- a known text sealed with the key: tells a wrong key file from a corrupt row
  sealed_check text NOT NULL,
  created_at timestamptz NOT NULL
);

CREATE TABLE meshd_leader (
  id smallint PRIMARY KEY CHECK (id = 1),
  term bigint NOT NULL,
  holder text NOT NULL,
  acquired_at timestamptz NOT NULL
);
INSERT INTO meshd_leader (id, term, holder, acquired_at) VALUES (1, 0, '', now());

CREATE TABLE meshd_ca_root (
  id text PRIMARY KEY,
  cert_pem text NOT NULL,
  sealed_key text NOT NULL,
  key_type text NOT NULL,
  fingerprint256 text NOT NULL UNIQUE CHECK (fingerprint256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL
);

-- CA material is never overwritten or lost, whoever writes to the database.
CREATE FUNCTION meshd_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never % (meshd keeps them for good)', TG_TABLE_NAME, lower(TG_OP) || 'd';
END $$;
CREATE TRIGGER meshd_ca_root_immutable BEFORE UPDATE OR DELETE ON meshd_ca_root
  FOR EACH ROW EXECUTE FUNCTION meshd_refuse_change();

CREATE TABLE meshd_ca_journal (
  id smallint PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL CHECK (version >= 1),
  journal text NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE meshd_token_key (
  id text PRIMARY KEY,
  algorithm text NOT NULL,
  sealed_key text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TRIGGER meshd_token_key_immutable BEFORE UPDATE ON meshd_token_key
  FOR EACH ROW EXECUTE FUNCTION meshd_refuse_change();

CREATE TABLE meshd_token_use (
  token_id text PRIMARY KEY,
  used_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX meshd_token_use_expiry ON meshd_token_use (expires_at);

CREATE TABLE meshd_token_revocation (
  token_id text PRIMARY KEY,
  revoked_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX meshd_token_revocation_expiry ON meshd_token_revocation (expires_at);

CREATE TABLE meshd_config_version (
  version bigint PRIMARY KEY CHECK (version >= 1),
  applied_at timestamptz NOT NULL,
  applied_by text NOT NULL
);
CREATE TABLE meshd_config_document (
  version bigint NOT NULL REFERENCES meshd_config_version (version) ON DELETE CASCADE,
  name text NOT NULL,
  text text NOT NULL,
  PRIMARY KEY (version, name)
);

CREATE TABLE meshd_federated_bundle (
  trust_domain text PRIMARY KEY,
  bundle text NOT NULL,
  sequence bigint NOT NULL CHECK (sequence >= 0),
  fetched_at timestamptz NOT NULL
);

CREATE TABLE meshd_replica (
  id text PRIMARY KEY,
  address text NOT NULL,
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL
);
CREATE TABLE meshd_proxy_connection (
  replica_id text NOT NULL REFERENCES meshd_replica (id) ON DELETE CASCADE,
  proxy_id text NOT NULL,
  connected_at timestamptz NOT NULL,
  PRIMARY KEY (replica_id, proxy_id)
);
CREATE INDEX meshd_proxy_connection_proxy ON meshd_proxy_connection (proxy_id);
`,
};
