/**
 * Imported first by the command-line entry points (`npm start`, `npm run admin`, `bench`, …).
 *
 * On Node.js 20 the AWS SDK prints a NodeVersionSupportWarning (future SDK releases will need
 * Node.js 22) the first time a process creates a client. The lockfile pins the SDK, so for a
 * person running a command it is noise on every run. `emitWarningIfUnsupportedVersion` in
 * `@aws-sdk/core` reads the opt-out AWS documents for it
 * (https://github.com/aws/aws-sdk-js-v3/issues/7983) when the first client is created, so it is set
 * here before any module creates one. Only that notice is silenced; an explicit value wins.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
