/**
 * The names of open rooms, for `GET /getAllRooms`. A single object: rooms
 * tell it when they open (first join) and close (last leave, admin close).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";

export class RoomDirectory extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS rooms (name TEXT PRIMARY KEY)`);
  }

  async add(room: string): Promise<void> {
    this.#sql.exec(`INSERT OR IGNORE INTO rooms (name) VALUES (?)`, room);
  }

  async remove(room: string): Promise<void> {
    this.#sql.exec(`DELETE FROM rooms WHERE name = ?`, room);
  }

  async list(): Promise<string[]> {
    return this.#sql
      .exec<{ name: string }>(`SELECT name FROM rooms ORDER BY name`)
      .toArray()
      .map((r) => r.name);
  }
}
