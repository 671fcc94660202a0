/// The version of the keysat-webhooks tools, printed by `--version` and sent as User-Agent.
public enum KeysatVersion {
    public static let string = "0.1.0"
}
