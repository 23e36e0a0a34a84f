/**
 * Remembers the nonces of bridge tokens until they expire, so a captured
 * token cannot be replayed. Lives in the SQLite of the object that accepts the
 * socket (BridgePool for control links, the room for room links).
 */
import { TOKEN_CLOCK_SKEW_SECONDS } from "../../protocol/timeouts.ts";

export class NonceLedger {
  readonly sql: SqlStorage;

  /** The table is created on the first claim: an object no bridge ever reached stores nothing. */
  #created = false;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  #create(): void {
    if (this.#created) return;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS token_nonces (nonce TEXT PRIMARY KEY, exp INTEGER NOT NULL)`);
    this.#created = true;
  }

  /**
   * When (ms) the last nonce remembered stops mattering (its token expired, plus clock skew), or
   * null when none does: storage that holds nonces must not be deleted before then, or a
   * captured token could be replayed.
   */
  guardedUntil(nowSeconds = Math.floor(Date.now() / 1000)): number | null {
    const exists = this.sql
      .exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'token_nonces'`)
      .toArray().length;
    if (!exists) return null;
    const row = this.sql.exec<{ exp: number | null }>(`SELECT MAX(exp) AS exp FROM token_nonces`).toArray()[0];
    const until = row?.exp == null ? null : row.exp + TOKEN_CLOCK_SKEW_SECONDS;
    return until === null || until < nowSeconds ? null : until * 1000;
  }

  /** The storage was deleted: the next claim creates the table again. */
  forget(): void {
    this.#created = false;
  }

  /** True the first time a nonce is seen; false for a replay. */
  claim(nonce: string, exp: number, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
    this.#create();
    this.sql.exec(`DELETE FROM token_nonces WHERE exp < ?`, nowSeconds - 60);
    const seen = this.sql.exec(`SELECT 1 FROM token_nonces WHERE nonce = ?`, nonce).toArray().length > 0;
    if (seen) return false;
    this.sql.exec(`INSERT INTO token_nonces (nonce, exp) VALUES (?, ?)`, nonce, exp);
    return true;
  }
}
