// Decrypts a sops file with npm's `sops-age` (an independent JavaScript implementation of
// sops+age decryption) and prints the result as JSON. Used by tests/it/secrets_oracle.rs.
//
//   node tests/sops_age_decrypt.mjs SOPS_AGE_PACKAGE_DIR FILE AGE_KEY_FILE
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [dir, file, keyFile] = process.argv.slice(2);
const { decryptSops } = await import(pathToFileURL(`${dir}/dist/index.js`).href);
const secretKey = readFileSync(keyFile, "utf8")
  .split("\n")
  .find((l) => l.startsWith("AGE-SECRET-KEY-"));
const out = await decryptSops({ path: file, secretKey });
process.stdout.write(JSON.stringify(out));
