// Checking the ledger's proofs in the browser (API.md §12, docs/ledger.md §11), so an auditor need not
// trust the server's word that an entry is in the signed tree: Web Crypto only (SHA-256, Ed25519), no
// Firebase, no DOM.
//
// * Merkle tree: RFC 9162 §2.1.1: leaf = SHA-256(0x00 ‖ entry bytes), node = SHA-256(0x01 ‖ left ‖ right);
//   the entry bytes are the ledger entry's `canonical` (its RFC 8785 encoding, what the chain hashed).
// * Inclusion proof: RFC 9162 §2.1.3.2's verification algorithm, step by step.
// * Checkpoint: a C2SP tlog-checkpoint body (origin, tree size, base64 root) in a C2SP signed-note; the
//   signature line is "— <key name> base64(key ID (4 bytes) ‖ Ed25519 signature)", the verifier key
//   "<name>+<hex key ID>+base64(0x01 ‖ 32-byte public key)" with key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖
//   public key)[:4] (c2sp.org/signed-note).

const ED25519 = 0x01;
const DASH = "\u2014 ";

export function fromBase64(text: string): Uint8Array {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let raw = "";
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** RFC 9162 §2.1.1: the leaf hash of an entry's bytes. */
export function leafHash(entryBytes: Uint8Array): Promise<Uint8Array> {
  return sha256(new Uint8Array([0x00]), entryBytes);
}

function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(new Uint8Array([0x01]), left, right);
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null when the proof is malformed. */
export async function rootFromInclusionProof(leafIndex: number, treeSize: number, leaf: Uint8Array, proof: Uint8Array[]): Promise<Uint8Array | null> {
  if (!Number.isInteger(leafIndex) || !Number.isInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) return null;
  // Sizes fit in 2^53; BigInt keeps the shifts exact beyond 2^31.
  let fn = BigInt(leafIndex);
  let sn = BigInt(treeSize - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

export interface CheckpointBody { origin: string; treeSize: number; rootHash: string }

export interface SignedNote { text: string; signatures: Array<{ name: string; keyId: number; signature: Uint8Array }> }

/** A signed note: its text (ending in a newline) and its signature lines. Throws on a malformed note. */
export function parseNote(note: string): SignedNote {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("not a signed note");
  const text = note.slice(0, split + 1);
  const signatures = note.slice(split + 2, -1).split("\n").map((line) => {
    if (!line.startsWith(DASH)) throw new Error("a signature line must start with an em dash");
    const [name, b64, ...rest] = line.slice(DASH.length).split(" ");
    if (!name || !b64 || rest.length) throw new Error("a signature line is '— <name> <base64>'");
    const raw = fromBase64(b64);
    if (raw.length < 5) throw new Error("a signature is a key ID and a signature");
    return { name, keyId: new DataView(raw.buffer).getUint32(0), signature: raw.slice(4) };
  });
  return { text, signatures };
}

/** The checkpoint body of a note's text (tlog-checkpoint: origin, size, root, then extension lines). */
export function parseCheckpoint(text: string): CheckpointBody {
  const [origin, size, root] = text.split("\n");
  if (!origin || !/^\d+$/.test(size ?? "") || !root) throw new Error("not a tlog-checkpoint body");
  return { origin, treeSize: Number(size), rootHash: root };
}

export interface Verifier { name: string; keyId: number; publicKey: Uint8Array }

/** A verifier key `<name>+<hex key ID>+<base64(0x01 ‖ key)>`, its key ID checked. */
export async function parseVerifierKey(vkey: string): Promise<Verifier> {
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  if (first < 1 || second < 0) throw new Error("a verifier key is <name>+<key id>+<key>");
  const name = vkey.slice(0, first);
  const hexId = vkey.slice(first + 1, second);
  const raw = fromBase64(vkey.slice(second + 1));
  if (!/^[0-9a-f]{8}$/.test(hexId) || raw.length !== 33 || raw[0] !== ED25519) throw new Error("only Ed25519 verifier keys are supported");
  const publicKey = raw.slice(1);
  const digest = await sha256(new TextEncoder().encode(`${name}\n`), new Uint8Array([ED25519]), publicKey);
  const keyId = new DataView(digest.buffer).getUint32(0);
  if (keyId !== parseInt(hexId, 16)) throw new Error("the key ID does not match the key");
  return { name, keyId, publicKey };
}

/** True when the note carries a signature by `verifier` and it verifies over the note's text. */
export async function verifyNote(note: SignedNote, verifier: Verifier): Promise<boolean> {
  const mine = note.signatures.filter((s) => s.name === verifier.name && s.keyId === verifier.keyId);
  if (!mine.length) return false;
  const key = await crypto.subtle.importKey("raw", concat(verifier.publicKey), { name: "Ed25519" }, false, ["verify"]);
  const text = new TextEncoder().encode(note.text);
  for (const s of mine) {
    if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, concat(s.signature), text))) return false;
  }
  return true;
}

export interface CheckpointCheck { body: CheckpointBody | null; signatureValid: boolean; problem: string | null }

/** A signed checkpoint checked with a verifier key: its body, and whether the signature holds. */
export async function checkCheckpoint(noteText: string, verifierKey: string): Promise<CheckpointCheck> {
  try {
    const note = parseNote(noteText);
    const body = parseCheckpoint(note.text);
    const verifier = await parseVerifierKey(verifierKey);
    const signatureValid = await verifyNote(note, verifier);
    return { body, signatureValid, problem: signatureValid ? null : "no valid signature by the verifier key" };
  } catch (err) {
    return { body: null, signatureValid: false, problem: (err as Error).message };
  }
}

export interface InclusionCheck {
  /** SHA-256(0x00 ‖ canonical) equals the proof's leafHash. */
  leafMatches: boolean;
  /** The root the proof leads to (base64), null when the proof is malformed. */
  computedRoot: string | null;
  /** computedRoot equals the expected root (the signed checkpoint's). */
  rootMatches: boolean;
}

/** An entry's inclusion in the tree whose root is `expectedRoot` (base64), from its bytes and a proof. */
export async function checkInclusion(canonical: string, proof: { leafIndex: number; treeSize: number; leafHash: string; proof: string[] }, expectedRoot: string): Promise<InclusionCheck> {
  const leaf = await leafHash(new TextEncoder().encode(canonical));
  const leafMatches = equal(leaf, fromBase64(proof.leafHash));
  const root = await rootFromInclusionProof(proof.leafIndex, proof.treeSize, leaf, proof.proof.map(fromBase64));
  const computedRoot = root ? toBase64(root) : null;
  return { leafMatches, computedRoot, rootMatches: computedRoot !== null && computedRoot === expectedRoot };
}
