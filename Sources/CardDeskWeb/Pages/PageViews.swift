import CardDeskCore
import Foundation
import Mustache

/// The page templates (`Templates/*.mustache`, package resources), read once, and the static files the pages load
/// (`Static/`, served at `/assets`).
enum PageViews {
    /// The package's resource folders, wherever the executable runs from.
    static let templatesFolder = Bundle.module.resourceURL?.appendingPathComponent("Templates").path ?? "Templates"
    static let staticFolder = Bundle.module.resourceURL?.appendingPathComponent("Static").path ?? "Static"

    static let library: Result<MustacheLibrary, CardDeskError> = {
        do {
            var library = MustacheLibrary()
            let names = try FileManager.default.contentsOfDirectory(atPath: templatesFolder).filter { $0.hasSuffix(".mustache") }
            guard !names.isEmpty else { throw CardDeskError(.configuration, "no templates") }
            for name in names {
                let text = try String(contentsOfFile: templatesFolder + "/" + name, encoding: .utf8)
                try library.register(text, named: String(name.dropLast(".mustache".count)))
            }
            return .success(library)
        } catch {
            return .failure(CardDeskError(
                .configuration,
                "The page templates could not be read from \(templatesFolder) (\(error)). Reinstall CardDesk: the templates ship beside the server."
            ))
        }
    }()

    /// Throws when the templates are missing or do not parse: the server checks this before it starts serving.
    static func check() throws(CardDeskError) {
        _ = try library.get()
    }

    /// The page `name` with `model`.
    static func render(_ model: Any, _ name: String) throws(CardDeskError) -> String {
        guard let text = try library.get().render(model, withTemplate: name) else {
            throw CardDeskError(.internalFailure, "The page template \(name) is missing. Reinstall CardDesk.")
        }
        return text
    }
}
