// Status-bar text for the `mochi/status` notifications the server sends. Pure: no `vscode` import.

export interface ServerStatus {
  // From the server: none | loading | ready | failed | indexing | indexed. From the extension itself:
  // starting | disabled (mochi.enable is off) | missing (no server executable) | error (it did not start).
  state?: string;
  detail?: string;
  model?: string;
  latency_ms?: number;
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

/** Fold a notification into the view: keep the last latency and model across updates. */
export class StatusModel {
  private state = "starting";
  private detail = "";
  private model = "";
  private latency: number | undefined;
  private indexing = false;

  update(s: ServerStatus): StatusView {
    if (s.state === "indexing") {
      this.indexing = true;
    } else if (s.state === "indexed") {
      this.indexing = false;
    } else if (s.state) {
      this.state = s.state;
      this.detail = s.detail ?? "";
    }
    if (s.model) {
      this.model = s.model;
    } else if (s.state === "ready" && s.detail) {
      this.model = s.detail;
    }
    if (typeof s.latency_ms === "number") {
      this.latency = s.latency_ms;
    }
    return this.view();
  }

  view(): StatusView {
    if (this.state === "disabled") {
      return { text: "$(circle-slash) Mochi off", tooltip: "Mochi is disabled. Click to enable it.", error: false };
    }
    if (this.state === "missing" || this.state === "error") {
      const what = this.state === "missing" ? "not installed" : "server error";
      return {
        text: `$(error) Mochi: ${what}`,
        tooltip: `${this.detail || "The Mochi server did not start."}\nClick to disable Mochi.`,
        error: true,
      };
    }
    const parts: string[] = [];
    let icon = "$(sparkle)";
    if (this.state === "loading") {
      icon = "$(loading~spin)";
      parts.push("loading model");
    } else if (this.state === "failed") {
      icon = "$(error)";
      parts.push("model failed");
    } else if (this.state === "starting" || this.state === "none") {
      icon = "$(loading~spin)";
      parts.push("starting");
    }
    if (this.indexing) {
      parts.push("indexing");
    }
    if (this.latency !== undefined && this.state === "ready") {
      parts.push(`${Math.round(this.latency)} ms`);
    }
    const text = `${icon} Mochi${parts.length ? " " + parts.join(" · ") : ""}`;
    const tooltip = [
      `Mochi: ${this.state}${this.detail && this.state === "failed" ? ` — ${this.detail}` : ""}`,
      this.model ? `model: ${this.model}` : "",
      this.latency !== undefined ? `last suggestion: ${this.latency.toFixed(0)} ms` : "",
      "Click to disable Mochi.",
    ].filter(Boolean).join("\n");
    return { text, tooltip, error: this.state === "failed" };
  }
}
