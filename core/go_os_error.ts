/**
 * Go's wording of an operating-system error, which etcd prints inside its
 * own messages (`open ca.pem: no such file or directory`): the one place
 * cairn turns Deno's error classes into those words.
 *
 * @module
 */

/**
 * The reason of a failed file operation as Go's `syscall.Errno` prints it
 * (`no such file or directory`, `permission denied`, `is a directory`,
 * `not a directory`); the error's own message for anything else.
 */
export function goOsError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  if (err instanceof Deno.errors.NotADirectory) return "not a directory";
  return err instanceof Error ? err.message : String(err);
}
