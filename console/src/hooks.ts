// Loading and acting, for the screens: a promise's state as data, and an action's busy/error state.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

import { ApiError } from "./api";

export interface Loaded<T> { data: T | undefined; error: ApiError | null; loading: boolean; reload: () => void }

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError("UNKNOWN", String((err as Error)?.message ?? err));
}

/** Run `load` when `deps` change (and on reload); keep the last data while reloading. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: ApiError | null; loading: boolean }>({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const current = useRef(0);
  useEffect(() => {
    const mine = ++current.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => { if (mine === current.current) setState({ data, error: null, loading: false }); },
      (err) => { if (mine === current.current) setState((s) => ({ data: s.data, error: asApiError(err), loading: false })); },
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export interface Action<A extends unknown[]> { run: (...args: A) => Promise<boolean>; busy: boolean; error: ApiError | null; clear: () => void }

/** An action button's state: `run` resolves true on success, false (with `error` set) on refusal. */
export function useAction<A extends unknown[]>(act: (...args: A) => Promise<unknown>, onDone?: () => void): Action<A> {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = async (...args: A) => {
    setBusy(true);
    setError(null);
    try {
      await act(...args);
      onDone?.();
      return true;
    } catch (err) {
      setError(asApiError(err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, clear: () => setError(null) };
}

/** Call `fn` every `ms` while the page is visible. */
export function useInterval(fn: () => void, ms: number | null): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (ms == null) return;
    const id = setInterval(() => { if (document.visibilityState === "visible") saved.current(); }, ms);
    return () => clearInterval(id);
  }, [ms]);
}
