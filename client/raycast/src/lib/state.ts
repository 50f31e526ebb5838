/**
 * The state of one improve request as the view shows it, driven by a
 * reducer so the streaming rules are testable without Raycast.
 */
import type { ImproveResult } from "promptd-client";

import { describeError, type ErrorInfo } from "./errors.js";

export type ImproveState =
  | { status: "streaming"; text: string; deltas: number }
  | { status: "done"; text: string; deltas: number; result: ImproveResult }
  | { status: "error"; text: string; deltas: number; error: ErrorInfo }
  | { status: "cancelled"; text: string; deltas: number };

export type ImproveAction =
  | { type: "start" }
  | { type: "delta"; text: string }
  | { type: "result"; result: ImproveResult }
  | { type: "error"; error: unknown }
  | { type: "cancel" };

export const initialImproveState: ImproveState = { status: "streaming", text: "", deltas: 0 };

/**
 * Deltas append while streaming; the result replaces the text with its
 * authoritative improved_prompt; anything arriving after the request ended
 * (a late delta, a second result) is ignored. An error keeps the partial text.
 */
export function improveReducer(state: ImproveState, action: ImproveAction): ImproveState {
  switch (action.type) {
    case "start":
      return initialImproveState;
    case "delta":
      if (state.status !== "streaming") return state;
      return { status: "streaming", text: state.text + action.text, deltas: state.deltas + 1 };
    case "result":
      if (state.status !== "streaming") return state;
      return { status: "done", text: action.result.improved_prompt, deltas: state.deltas, result: action.result };
    case "error": {
      if (state.status !== "streaming") return state;
      const error = describeError(action.error);
      if (error.cancelled) return { status: "cancelled", text: state.text, deltas: state.deltas };
      return { status: "error", text: state.text, deltas: state.deltas, error };
    }
    case "cancel":
      if (state.status !== "streaming") return state;
      return { status: "cancelled", text: state.text, deltas: state.deltas };
  }
}

/** The detail view's navigation title for a state. */
export function improveTitle(state: ImproveState): string {
  switch (state.status) {
    case "streaming":
      return state.text ? "Writing…" : "Improving…";
    case "done":
      return state.result.fallback_from ? "Improved (fallback)" : "Improved";
    case "error":
      return state.error.title;
    case "cancelled":
      return "Cancelled";
  }
}
