import { render } from "preact";

import { connect } from "./api";
import { App } from "./app";
import "./styles.css";

const root = document.getElementById("app")!;
connect().then(
  () => render(<App />, root),
  (err) => { root.textContent = `The console could not reach Firebase: ${(err as Error).message}`; },
);
