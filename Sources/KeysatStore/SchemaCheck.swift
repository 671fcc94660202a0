import KeysatCore

/// What is wrong with a database's schema, in one line an operator can act on.
///
/// Used only where something already failed (a migration step, a statement naming a table or
/// column that is not there, a read-only open of an old schema) and by `init`: never on a start
/// that found the schema current, which costs one query (`Migrations.migrate`). What each step
/// makes is not listed by hand but found by applying the steps, one at a time, to an empty
/// database in memory, so it cannot drift from `Migrations.steps`.
enum SchemaCheck {
    /// A thing a step makes: a table, a column, an index or a trigger.
    struct Object: Hashable, Comparable, CustomStringConvertible {
        var kind: String
        var name: String

        var description: String { "\(kind) \(name)" }

        /// Tables first: a dropped table is named, not the first of its columns.
        static func < (a: Object, b: Object) -> Bool { (a.rank, a.name) < (b.rank, b.name) }
        private var rank: Int { ["table", "column", "index", "trigger"].firstIndex(of: kind) ?? 4 }
    }

    /// The objects each step makes that are still there after the last step (step 7's index,
    /// dropped by step 8, is not expected anywhere).
    static var expected: [(version: Int, objects: Set<Object>)] { model.steps }

    /// The `CREATE INDEX` statement of each index the steps make, by name: an index holds
    /// nothing that its table does not, so `init --repair` may remake a missing one.
    static var indexDefinitions: [String: String] { model.indexes }

    private static let model: (steps: [(version: Int, objects: Set<Object>)], indexes: [String: String]) = {
        guard let memory = try? Database(inMemory: ()) else { return ([], [:]) }
        var before = Set<Object>()
        var made: [(version: Int, objects: Set<Object>)] = []
        for step in Migrations.steps {
            guard (try? memory.execute(step.sql)) != nil, let after = try? objects(in: memory) else {
                return ([], [:])
            }
            made.append((step.version, after.subtracting(before)))
            before = after
        }
        let indexes =
            (try? memory.prepare(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
            .rows { ($0.string(0), $0.string(1)) }) ?? []
        return (
            made.map { ($0.version, $0.objects.intersection(before)) },
            Dictionary(indexes, uniquingKeysWith: { first, _ in first })
        )
    }()

    /// The statements that make the missing indexes of recorded steps: what `init --repair`
    /// remakes (one whose table is missing fails, and that failure names the table).
    static func missingIndexes(in db: Database) throws -> [String] {
        let actual = try objects(in: db)
        let current = try recorded(in: db)?.max() ?? 0
        return expected.filter { $0.version <= current }.flatMap(\.objects)
            .filter { $0.kind == "index" && !actual.contains($0) }.sorted()
            .compactMap { indexDefinitions[$0.name] }
    }

    /// The tables, columns (`table.column`), indexes and triggers of `db`, SQLite's own left out.
    static func objects(in db: Database) throws -> Set<Object> {
        var found = Set<Object>()
        let master = try db.prepare(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger') AND name NOT LIKE 'sqlite_%'"
        ).rows { Object(kind: $0.string(0), name: $0.string(1)) }
        let columns = try db.prepare("SELECT name FROM pragma_table_info(?)")
        for object in master {
            found.insert(object)
            guard object.kind == "table" else { continue }
            for column in try columns.rows([.text(object.name)], { $0.string(0) }) {
                found.insert(Object(kind: "column", name: object.name + "." + column))
            }
        }
        return found
    }

    /// The versions recorded in `keysat_webhooks_schema`, or `nil` when that table is missing.
    static func recorded(in db: Database) throws -> Set<Int>? {
        let exists =
            try db.prepare(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'keysat_webhooks_schema'"
            ).first { _ in true } ?? false
        guard exists else { return nil }
        return Set(try db.prepare("SELECT version FROM keysat_webhooks_schema").rows { $0.integer(0) ?? 0 })
    }

    /// The steps whose changes are all there but which are not recorded (their rows deleted, or
    /// the schema table dropped): what `init --repair` records. Above the last recorded step,
    /// steps that make nothing that lasts (7, 8) count only when a later step's changes are
    /// there too, and step 1 (Keysat's own tables, in every Keysat database we adopt) only then.
    static func appliedButUnrecorded(in db: Database) throws -> [Int] {
        let actual = try objects(in: db)
        let recorded = try recorded(in: db) ?? []
        let current = recorded.max() ?? 0
        var found = expected.filter {
            $0.version < current && !recorded.contains($0.version) && $0.objects.isSubset(of: actual)
        }.map(\.version)
        var pending: [Int] = []
        for step in expected where step.version > current {
            guard step.objects.isSubset(of: actual) else { break }
            pending.append(step.version)
            if !step.objects.isEmpty && step.version > 1 {
                found += pending
                pending = []
            }
        }
        return found
    }

    /// The first thing wrong with `db`'s schema, one line naming it and how to repair it, or
    /// `nil` when nothing is (a newer schema is not "wrong": `Migrations` refuses it apart).
    static func problem(in db: Database) throws -> String? {
        let recorded = try recorded(in: db)
        let current = recorded?.max() ?? 0
        guard current <= Migrations.latest else { return nil }
        let actual = try objects(in: db)
        let unrecorded = try appliedButUnrecorded(in: db)
        let database = "database \(db.path)"
        if recorded == nil, let last = unrecorded.last {
            return
                "\(database): table keysat_webhooks_schema is missing, though the changes of schema steps 1 to \(last) are there: run 'keysat-webhooks init --repair' to record them"
        }
        if let first = unrecorded.first {
            return
                "\(database): schema step \(first) is applied but not recorded in keysat_webhooks_schema (its row deleted?): run 'keysat-webhooks init --repair' to record it"
        }
        for step in expected where step.version <= current {
            if let missing = step.objects.subtracting(actual).sorted().first {
                if missing.kind == "index" {
                    return
                        "\(database): \(missing) of schema step \(step.version) is missing: run 'keysat-webhooks init --repair' to remake it"
                }
                return
                    "\(database): \(missing) of schema step \(step.version) is missing (dropped by hand?): restore the database from a backup; keysat-webhooks cannot remake what it held"
            }
        }
        for step in expected where step.version > current {
            let there = step.objects.intersection(actual)
            if !there.isEmpty && there != step.objects, let first = there.sorted().first,
                let missing = step.objects.subtracting(actual).sorted().first
            {
                return
                    "\(database): schema step \(step.version) is partly applied (\(first) is there, \(missing) is not): restore the database from a backup"
            }
        }
        return nil
    }
}
