/**
 * The data directory's files follow common/fs/privateFiles.ts (0700 folder, 0600 files,
 * atomic replacement). Kept as a re-export for modules that still import it from here.
 */
export { ensurePrivateDirectory, ensurePrivateFile, readSecretFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';
