/** The chat panel: sending, the messages (yours, the others', the demo's own notes) and the unread badge. */
import type { DemoApp } from "./app.ts";
import { create, show } from "./dom.ts";
import { errorOf } from "./messages.ts";

export class Chat {
  readonly #app: DemoApp;
  #unread = 0;

  constructor(app: DemoApp) {
    this.#app = app;
  }

  bind(): void {
    const ui = this.#app.ui;
    ui.buttonChat.addEventListener("click", () => this.toggle());
    ui.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.send();
    });
  }

  toggle(): void {
    const ui = this.#app.ui;
    const open = ui.chat.hidden;
    show(ui.chat, open);
    ui.buttonChat.setAttribute("aria-pressed", String(open));
    if (open) {
      this.resetUnread();
      ui.chatInput.focus();
    }
  }

  async send(): Promise<void> {
    const ui = this.#app.ui;
    const room = this.#app.room;
    const text = ui.chatInput.value;
    if (!room || text.trim() === "") return;
    ui.chatInput.value = "";
    try {
      await room.sendMessage(text);
    } catch (error) {
      ui.chatInput.value = text;
      this.systemMessage(`Message not sent: ${errorOf(error).message}`);
    }
  }

  message(user: string, message: string): void {
    const mine = user === this.#app.room?.user;
    const item = create("li", mine ? "message mine" : "message");
    item.append(create("strong", undefined, mine ? "You" : user), create("span", undefined, message));
    this.#append(item);
    if (!mine && this.#app.ui.chat.hidden) {
      this.#unread += 1;
      this.#renderUnread();
    }
  }

  systemMessage(text: string): void {
    this.#append(create("li", "message system", text));
  }

  resetUnread(): void {
    this.#unread = 0;
    this.#renderUnread();
  }

  #append(item: HTMLLIElement): void {
    const list = this.#app.ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  #renderUnread(): void {
    const badge = this.#app.ui.unreadBadge;
    badge.textContent = String(this.#unread);
    show(badge, this.#unread > 0);
  }
}
