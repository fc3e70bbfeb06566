namespace Multiprocessing;

/// <summary>
/// Messages between a parent and a worker. Each frame starts with a MessagePack header (kind,
/// then the fields listed here); a call's arguments and a result's values follow the header as
/// raw serializer output, so they are written and read in place without a copy.
/// </summary>
internal enum MessageKind : byte
{
    /// <summary>Worker to parent, first frame after connecting: token, pid.</summary>
    Hello = 1,
    /// <summary>Parent to worker: worker name, status block name or nil (see WorkerStatus), serializer type name, initializer delegate or nil.</summary>
    Init = 2,
    /// <summary>Worker to parent: initializer done, ready for calls.</summary>
    Ready = 3,
    /// <summary>Worker to parent: the initializer threw (exception follows); the worker exits.</summary>
    InitFailed = 4,
    /// <summary>Parent to worker: call id, function id, delegate or nil; then the items (an array of argument tuples).</summary>
    Call = 5,
    /// <summary>Worker to parent: call id, elapsed ticks; then the results (an array).</summary>
    Result = 6,
    /// <summary>Worker to parent: call id, elapsed ticks, exception.</summary>
    Error = 7,
    /// <summary>Parent to worker: call id whose cancellation token to signal.</summary>
    Cancel = 8,
    /// <summary>Parent to worker: finish what was sent, then exit with code 0.</summary>
    Exit = 9,
    /// <summary>Parent to worker: function id whose cached definition (and captured values) to drop; its job is over.</summary>
    Forget = 10,
}
