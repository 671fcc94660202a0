#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS (default 20; CI runs them briefly,
# run longer by hand: Fuzz/run.sh 600). Crashes are saved under Fuzz/artifacts/ and must become
# regression tests (in Tests/KeysatStoreTests/JSONValidatorTests.swift and StoreTests.swift, and for
# filters in Tests/KeysatCoreTests/EventFilterTests.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
out=.build/fuzz
mkdir -p "$out" Fuzz/artifacts
store=Sources/KeysatCore
common=("$store/KeysatError.swift" "$store/SystemCall.swift" "$store/JSONText.swift" "$store/TerminalText.swift"
    "$store/Trimming.swift")
build() {
    # ld.gold warns about every ASan helper symbol; only real errors are worth showing.
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name KeysatFuzz "$@" 2>&1 \
        | { grep -v -e 'Cannot export local symbol' -e '^$' || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ]
}
build -o "$out/json-fuzz" Fuzz/JSONValidatorFuzz.swift "$store/JSONValidator.swift" "$store/JSONPretty.swift" "${common[@]}"
# Endpoint.swift holds the endpoint's settings too: their types come along.
build -o "$out/url-fuzz" Fuzz/EndpointURLFuzz.swift "$store/Endpoint.swift" "$store/RetrySchedule.swift" \
    "$store/CustomHeaders.swift" "$store/ClientCertificate.swift" "$store/RateLimit.swift" "$store/HeaderLine.swift" \
    "$store/Durations.swift" "$store/Timestamp.swift" "$store/JSONStrings.swift" "$store/JSONValidator.swift" \
    "$store/OrderingKey.swift" "$store/FieldName.swift" "${common[@]}"
build -o "$out/filter-fuzz" Fuzz/FilterFuzz.swift "$store/EventFilter.swift" "$store/EventFilter+Matching.swift" \
    "$store/EventFilter+Selection.swift" "$store/FilterCompiler.swift" "$store/JSONValue.swift" "$store/JSONNumber.swift" \
    "$store/JSONStrings.swift" "$store/JSONValidator.swift" "$store/Timestamp.swift" "${common[@]}"
build -o "$out/duration-fuzz" Fuzz/DurationFuzz.swift "$store/Durations.swift" "$store/Timestamp.swift" "${common[@]}"
# Verification: the receiver's and the signing files in one module (their imports of the
# project's libraries dropped), with the C shim that loads libcrypto.
mkdir -p "$out/verify-src"
for file in KeysatReceiver/ReceivedWebhook KeysatDelivery/StandardWebhooks KeysatDelivery/Signature \
    KeysatDelivery/SigningKey KeysatDelivery/Base64 KeysatDelivery/WebhookSecret KeysatDelivery/Ed25519Key \
    KeysatDelivery/AsymmetricKey; do
    sed -e '/^\(public \|internal \)\{0,1\}import Keysat[A-Za-z]*$/d' "Sources/$file.swift" \
        > "$out/verify-src/$(basename "$file").swift"
done
printf 'module CCryptoShim {\n    header "%s/Sources/CCryptoShim/include/CCryptoShim.h"\n    export *\n}\n' "$PWD" \
    > "$out/verify-src/module.modulemap"
clang -c -O1 -fsanitize=fuzzer-no-link,address -I Sources/CCryptoShim/include Sources/CCryptoShim/shim.c -o "$out/shim.o"
build -o "$out/verify-fuzz" -I "$out/verify-src" Fuzz/VerifyFuzz.swift "$out"/verify-src/*.swift \
    "$store/Timestamp.swift" "$store/Identifiers.swift" "$store/Logger.swift" "$store/Environment.swift" \
    "$store/Output.swift" "$store/EventType.swift" "$store/EndpointSecret.swift" "${common[@]}" "$out/shim.o" -ldl
for target in json url duration filter verify; do
    corpus="$out/corpus-$target"
    mkdir -p "$corpus"
    cp Fuzz/corpus/$target/* "$corpus/" 2>/dev/null || true
    echo "fuzz: $target for ${seconds}s"
    "$out/$target-fuzz" -max_total_time="$seconds" -artifact_prefix=Fuzz/artifacts/$target- "$corpus" \
        > "$out/$target.log" 2>&1 || { tail -n 40 "$out/$target.log"; echo "fuzz: $target crashed; see Fuzz/artifacts/" >&2; exit 1; }
    grep -E '^Done [0-9]+ runs' "$out/$target.log" || true
done
