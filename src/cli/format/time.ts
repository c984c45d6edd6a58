// How the CLI writes times and durations: UTC timestamps to the second, and durations in the
// unit a person reads at a glance.

export function formatTimestamp(time: number): string {
  return `${new Date(time).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.round(milliseconds)} ms`;
  if (milliseconds < 60_000) return `${(milliseconds / 1000).toFixed(1)} s`;
  const minutes = Math.floor(milliseconds / 60_000);
  const seconds = Math.round((milliseconds % 60_000) / 1000);
  return `${minutes}m ${String(seconds).padStart(2, '0')}s`;
}

/** Time since the workflow started, for timelines: +0.000s, +1.234s, +75.000s. */
export function formatOffset(milliseconds: number): string {
  return `+${(Math.max(0, milliseconds) / 1000).toFixed(3)}s`;
}
