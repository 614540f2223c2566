import CardDeskCore

/// Short-hands for the CA's person-readable errors.
enum CAError {
    static func unsupportedAlgorithm(_ name: String) -> CardDeskError {
        CardDeskError(.internalFailure, "The signature algorithm \(name) is not supported by this CA.")
    }

    static func malformed(_ what: String, _ error: any Error) -> CardDeskError {
        CardDeskError(.malformedRequest, "The \(what) could not be read: it is not valid DER (\(error)).")
    }
}
