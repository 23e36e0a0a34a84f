/**
 * The few Prometheus metrics the bridge keeps itself (gauges are read from
 * live state when `/metrics` is scraped): a command latency histogram by
 * operation and error counters.
 */

export const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS_SECONDS.length).fill(0);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    this.count += 1;
    this.sum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS_SECONDS.length; i++)
      if (seconds <= LATENCY_BUCKETS_SECONDS[i]!) this.counts[i]! += 1;
  }
}

export class BridgeMetrics {
  private readonly commands = new Map<string, Histogram>();
  private readonly errors = new Map<string, number>();

  /** One media command on a room link, answered (ok or not) after `seconds`. */
  observeCommand(op: string, seconds: number, errorCode?: number): void {
    let histogram = this.commands.get(op);
    if (!histogram) {
      histogram = new Histogram();
      this.commands.set(op, histogram);
    }
    histogram.observe(seconds);
    if (errorCode !== undefined) {
      const key = `${op}\u0000${errorCode}`;
      this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    }
  }

  /** Prometheus text format (version 0.0.4). */
  render(
    gauges: ReadonlyArray<{
      name: string;
      help: string;
      type?: "gauge" | "counter";
      samples: ReadonlyArray<{ labels?: Record<string, string>; value: number }>;
    }>,
  ): string {
    const lines: string[] = [];
    for (const gauge of gauges) {
      lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} ${gauge.type ?? "gauge"}`);
      for (const sample of gauge.samples)
        lines.push(`${gauge.name}${labels(sample.labels)} ${formatNumber(sample.value)}`);
    }
    lines.push(
      "# HELP bridge_command_duration_seconds Time from receiving a media command on a room link to answering it.",
      "# TYPE bridge_command_duration_seconds histogram",
    );
    for (const [op, histogram] of [...this.commands].sort(([a], [b]) => a.localeCompare(b))) {
      for (const [i, le] of LATENCY_BUCKETS_SECONDS.entries()) {
        lines.push(`bridge_command_duration_seconds_bucket${labels({ op, le: String(le) })} ${histogram.counts[i]}`);
      }
      lines.push(`bridge_command_duration_seconds_bucket${labels({ op, le: "+Inf" })} ${histogram.count}`);
      lines.push(`bridge_command_duration_seconds_sum${labels({ op })} ${formatNumber(histogram.sum)}`);
      lines.push(`bridge_command_duration_seconds_count${labels({ op })} ${histogram.count}`);
    }
    lines.push(
      "# HELP bridge_command_errors_total Media commands answered with an error, by operation and error code.",
      "# TYPE bridge_command_errors_total counter",
    );
    for (const [key, value] of [...this.errors].sort(([a], [b]) => a.localeCompare(b))) {
      const [op, code] = key.split("\u0000") as [string, string];
      lines.push(`bridge_command_errors_total${labels({ op, code })} ${value}`);
    }
    return `${lines.join("\n")}\n`;
  }
}

function labels(values: Record<string, string> | undefined): string {
  if (!values) return "";
  const entries = Object.entries(values);
  if (entries.length === 0) return "";
  return `{${entries.map(([key, value]) => `${key}="${value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`).join(",")}}`;
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}
