extension String {
    /// Without leading and trailing spaces, tabs and line ends (scalar by scalar: "\r\n" is one
    /// Character in Swift).
    public var trimmingSpaces: String {
        var scalars = Substring(self).unicodeScalars
        let space: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        while let first = scalars.first, space(first) { scalars = scalars.dropFirst() }
        while let last = scalars.last, space(last) { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
