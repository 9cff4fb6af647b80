// Hash routes (#/experiments/abc): the Hosting emulator and Firebase Hosting serve one index.html.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "experiments" }
  | { name: "new" }
  | { name: "edit"; id: string }
  | { name: "experiment"; id: string }
  | { name: "inbox" }
  | { name: "holdouts" }
  | { name: "audit"; id?: string }
  | { name: "app" };

export function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [head, id, tail] = parts;
  if (head === "experiments" && id === "new") return { name: "new" };
  if (head === "experiments" && id && tail === "edit") return { name: "edit", id };
  if (head === "experiments" && id) return { name: "experiment", id };
  if (head === "inbox") return { name: "inbox" };
  if (head === "holdouts") return { name: "holdouts" };
  if (head === "audit") return { name: "audit", id };
  if (head === "app") return { name: "app" };
  return { name: "experiments" };
}

export const href = {
  experiments: () => "#/experiments",
  newExperiment: () => "#/experiments/new",
  experiment: (id: string) => `#/experiments/${encodeURIComponent(id)}`,
  edit: (id: string) => `#/experiments/${encodeURIComponent(id)}/edit`,
  inbox: () => "#/inbox",
  holdouts: () => "#/holdouts",
  audit: (id?: string) => (id ? `#/audit/${encodeURIComponent(id)}` : "#/audit"),
  app: () => "#/app",
};

export function go(to: string): void {
  location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => { setRoute(parse(location.hash)); window.scrollTo(0, 0); };
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}
