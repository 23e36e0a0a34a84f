/**
 * Remembers the nonces of bridge tokens until they expire, so a captured
 * token cannot be replayed. Lives in the SQLite of the object that accepts the
 * socket (BridgePool for control links, the room for room links).
 */
export class NonceLedger {
  readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS token_nonces (nonce TEXT PRIMARY KEY, exp INTEGER NOT NULL)`);
  }

  /** True the first time a nonce is seen; false for a replay. */
  claim(nonce: string, exp: number, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
    this.sql.exec(`DELETE FROM token_nonces WHERE exp < ?`, nowSeconds - 60);
    const seen = this.sql.exec(`SELECT 1 FROM token_nonces WHERE nonce = ?`, nonce).toArray().length > 0;
    if (seen) return false;
    this.sql.exec(`INSERT INTO token_nonces (nonce, exp) VALUES (?, ?)`, nonce, exp);
    return true;
  }
}
