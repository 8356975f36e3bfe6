;;; plusls.el --- Eglot setup for plusls, the offline AI language server  -*- lexical-binding: t; -*-

;; Load from your init file:  (load "/path/to/plusls/editors/emacs/plusls.el")
;; then M-x eglot in a Python, JavaScript, TypeScript, Go, Rust or Java buffer (or add `eglot-ensure' to the hooks).
;;
;; What Eglot gives you with plusls (Eglot has no inline/ghost-text completion):
;;   completion-at-point (textDocument/completion; with Corfu or Company it pops up as you type),
;;   hover in ElDoc, M-x eglot-code-action-rewrite for "Generate docstring",
;;   M-x xref-find-apropos (C-M-.) for semantic workspace symbols,
;;   M-x plusls-search (results in a grep-mode buffer), M-x plusls-reindex.
;; Eglot runs one server per major mode: these modes get plusls instead of your usual server for them.

;;; Code:

(require 'eglot)
(require 'grep)
(require 'seq)
(require 'subr-x)

(defgroup plusls nil
  "The plusls offline AI language server."
  :group 'tools)

(defcustom plusls-command '("plusls" "serve")
  "Program and arguments that start the plusls server on stdio."
  :type '(repeat string))

(defcustom plusls-modes
  '(python-mode python-ts-mode js-mode js-ts-mode typescript-mode typescript-ts-mode
    go-mode go-ts-mode rust-mode rust-ts-mode java-mode java-ts-mode)
  "Major modes that use plusls."
  :type '(repeat symbol))

(defcustom plusls-settings
  '(:providers "auto"   ; or ["CUDAExecutionProvider" "CPUExecutionProvider"]
    ;; :models (:dir "~/.cache/plusls/models" :completion "/path/to/exported/causal-lm")
    :completion (:enabled t :debounceMs 60 :maxNewTokens 48 :contextTokens 0 :deadlineMs 2000
                 :promptDeadlineMs 10000
                 :retrieval t :repoLayout :json-false :multiline t :suffixTokens 64 :prefixReuse t :promptLookup t)
    :hover (:enabled t)
    :docstring (:enabled t)
    :search (:enabled t :indexOnStart t :maxFileBytes 1000000)
    :telemetry (:enabled t))
  "Server settings: sent as initializationOptions and as the \"plusls\" section of the workspace configuration.
JSON false is `:json-false'; leave a key out to keep the server's default.  Set it before loading this file."
  :type 'plist)

(defcustom plusls-search-results 20
  "How many hits `plusls-search' asks for."
  :type 'integer)

(defun plusls--contact (&rest _)
  "Eglot contact: `plusls-command' plus the settings as initializationOptions."
  (append plusls-command (list :initializationOptions plusls-settings)))

(add-to-list 'eglot-server-programs (cons plusls-modes #'plusls--contact))

;; workspace/didChangeConfiguration {settings: {plusls: ...}} on connect, and workspace/configuration answers.
(let ((config (default-value 'eglot-workspace-configuration)))
  (when (listp config)
    (setq-default eglot-workspace-configuration
                  (plist-put (copy-tree config) :plusls plusls-settings))))

(defun plusls--server ()
  (or (eglot-current-server) (user-error "plusls: no Eglot server in this buffer (M-x eglot)")))

(defun plusls--execute (command &rest arguments)
  (jsonrpc-request (plusls--server) :workspace/executeCommand
                   (list :command command :arguments (vconcat arguments))))

(defun plusls--first-line (text)
  (let ((lines (seq-remove (lambda (l) (string-blank-p l)) (split-string (or text "") "\n"))))
    (string-trim (or (car lines) ""))))

(defun plusls-search (query)
  "Semantic search of the workspace for QUERY with plusls; RET on a hit visits it."
  (interactive (list (read-string "plusls search: " (when (use-region-p)
                                                     (buffer-substring-no-properties
                                                      (region-beginning) (region-end))))))
  (let* ((project (project-current))
         (root (if project (project-root project) default-directory))
         (hits (plusls--execute "plusls.search" query plusls-search-results))
         (buffer (get-buffer-create "*plusls search*")))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (erase-buffer)
        (setq default-directory root)
        (insert (format "plusls search: %s\n\n" query))
        ;; startLine/endLine are 1-based; path is relative to the workspace root (or absolute).
        (seq-doseq (hit hits)
          (insert (format "%s:%d: %s  %s  (%.3f)\n"
                          (plist-get hit :path) (plist-get hit :startLine) (plist-get hit :name)
                          (plusls--first-line (plist-get hit :snippet)) (or (plist-get hit :score) 0))))
        (grep-mode)))
    (pop-to-buffer buffer)))

(defun plusls-reindex ()
  "Ask plusls to reindex the workspace."
  (interactive)
  (plusls--execute "plusls.reindex")
  (message "plusls: reindexing"))

(provide 'plusls)
;;; plusls.el ends here
